"""A TensorFlow.js Layers model (model.json + weight shards) as a torch.nn.Module, and back.

Written by Batch Advisor into a torchrun run folder beside train.py; it needs torch and numpy only.

Keras semantics are kept layer for layer: inputs arrive NHWC (as Keras gets them) and are moved to
NCHW once; 'same' padding pads like TensorFlow (the extra row/column at the bottom/right when the
total is odd); Flatten flattens in NHWC order, so a Dense kernel after it reads the features in
the order it was trained with; BatchNormalization keeps Keras's epsilon and momentum (Keras 0.99 =
torch 0.01). Weights: Conv2D HWIO → OIHW, DepthwiseConv2D HW(C)(M) → (C·M)1HW, Dense (in, out) →
(out, in); `save_tfjs` writes them back in the Keras layouts, in the manifest's order.

An unsupported layer, or a supported one with a setting it does not handle, raises
UnsupportedLayer naming the layer and its class before anything trains.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class UnsupportedLayer(ValueError):
    """The model cannot be translated: the message names the layer, its class and why."""


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


def same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's 'same' padding for one axis: (before, after), the odd pixel after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _same_pads(x, kernel, stride, dilation=(1, 1)):
    top, bottom = same_padding(x.shape[2], kernel[0], stride[0], dilation[0])
    left, right = same_padding(x.shape[3], kernel[1], stride[1], dilation[1])
    return left, right, top, bottom


def _relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    """Keras ReLU: max_value above it, x from threshold, negative_slope · (x − threshold) below."""
    if negative_slope == 0.0 and threshold == 0.0:
        y = F.relu(x)
    else:
        y = torch.where(x >= threshold, x, negative_slope * (x - threshold))
    return torch.clamp(y, max=max_value) if max_value is not None else y


def channel_dim(x):
    """Where Keras's last axis lives here: NCHW keeps channels in dim 1, flat tensors in the last."""
    return 1 if x.dim() == 4 else -1


def torch_dim(keras_axis, rank):
    """A Keras (NHWC) axis as the dimension of our tensors (NCHW for rank 4)."""
    axis = keras_axis if keras_axis >= 0 else rank + keras_axis
    return {0: 0, 1: 2, 2: 3, 3: 1}[axis] if rank == 4 else axis


ACTIVATIONS = {
    'linear': lambda x: x,
    'relu': F.relu,
    'relu6': lambda x: torch.clamp(x, 0.0, 6.0),
    'elu': F.elu,
    'selu': F.selu,
    'sigmoid': torch.sigmoid,
    'hard_sigmoid': lambda x: torch.clamp(0.2 * x + 0.5, 0.0, 1.0),
    'tanh': torch.tanh,
    'softplus': F.softplus,
    'softsign': F.softsign,
    'swish': F.silu,
    'silu': F.silu,
    'softmax': lambda x: F.softmax(x, dim=channel_dim(x)),
    'exponential': torch.exp,
}
# tfjs writes camelCase names in some files.
ACTIVATIONS.update({'hardSigmoid': ACTIVATIONS['hard_sigmoid']})


def activation(name, layer, cls):
    fn = ACTIVATIONS.get(name or 'linear')
    if fn is None:
        raise UnsupportedLayer(f'layer "{layer}" ({cls}): activation "{name}" is not supported; use one of {", ".join(sorted(ACTIVATIONS))}')
    return fn


class Layer(nn.Module):
    """A translated layer: `core` computes it, `act` is its own activation (skipped for logits)."""

    def __init__(self, name, cls, act='linear'):
        super().__init__()
        self.layer_name = name
        self.cls = cls
        self.act = activation(act, name, cls)
        self.exports = []  # (weight name in the manifest's layout, function giving it as numpy)

    def core(self, x):
        return x

    def forward(self, x):
        return self.act(self.core(x))

    def export(self, weight, fn):
        self.exports.append((weight, fn))


def _np(t):
    return t.detach().cpu().float().numpy()


class Conv2D(Layer):
    def __init__(self, name, c, w):
        super().__init__(name, 'Conv2D', c.get('activation'))
        self.kernel, self.stride, self.dilation = _pair(c['kernel_size']), _pair(c.get('strides', 1)), _pair(c.get('dilation_rate', 1))
        self.padding = c.get('padding', 'valid')
        self.groups = int(c.get('groups', 1) or 1)
        self.weight = nn.Parameter(torch.from_numpy(w('kernel').transpose(3, 2, 0, 1).copy()))
        self.export('kernel', lambda: _np(self.weight).transpose(2, 3, 1, 0))
        self.bias = None
        if c.get('use_bias', True):
            self.bias = nn.Parameter(torch.from_numpy(w('bias').copy()))
            self.export('bias', lambda: _np(self.bias))

    def core(self, x):
        return conv(x, self.weight, self.bias, self.kernel, self.stride, self.dilation, self.padding, self.groups)


def conv(x, weight, bias, kernel, stride, dilation, padding, groups):
    pad = (0, 0)
    if padding == 'same':
        left, right, top, bottom = _same_pads(x, kernel, stride, dilation)
        if left == right and top == bottom:
            pad = (top, left)
        else:
            x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, stride, pad, dilation, groups)


class DepthwiseConv2D(Layer):
    def __init__(self, name, c, w, cls='DepthwiseConv2D'):
        super().__init__(name, cls, c.get('activation'))
        self.kernel, self.stride, self.dilation = _pair(c['kernel_size']), _pair(c.get('strides', 1)), _pair(c.get('dilation_rate', 1))
        self.padding = c.get('padding', 'valid')
        k = w('depthwise_kernel')  # [h, w, channels, multiplier]
        self.channels, self.multiplier = k.shape[2], k.shape[3]
        shape = k.shape
        self.depthwise = nn.Parameter(torch.from_numpy(k.transpose(2, 3, 0, 1).reshape(shape[2] * shape[3], 1, shape[0], shape[1]).copy()))
        self.export('depthwise_kernel', lambda: _np(self.depthwise).reshape(shape[2], shape[3], shape[0], shape[1]).transpose(2, 3, 0, 1))
        self.bias = None
        if cls == 'DepthwiseConv2D' and c.get('use_bias', True):
            self.bias = nn.Parameter(torch.from_numpy(w('bias').copy()))
            self.export('bias', lambda: _np(self.bias))

    def depthwise_core(self, x):
        return conv(x, self.depthwise, self.bias, self.kernel, self.stride, self.dilation, self.padding, self.channels)

    def core(self, x):
        return self.depthwise_core(x)


class SeparableConv2D(DepthwiseConv2D):
    def __init__(self, name, c, w):
        super().__init__(name, c, w, 'SeparableConv2D')
        self.pointwise = nn.Parameter(torch.from_numpy(w('pointwise_kernel').transpose(3, 2, 0, 1).copy()))
        self.export('pointwise_kernel', lambda: _np(self.pointwise).transpose(2, 3, 1, 0))
        self.pointwise_bias = None
        if c.get('use_bias', True):
            self.pointwise_bias = nn.Parameter(torch.from_numpy(w('bias').copy()))
            self.export('bias', lambda: _np(self.pointwise_bias))

    def core(self, x):
        return F.conv2d(self.depthwise_core(x), self.pointwise, self.pointwise_bias)


class Dense(Layer):
    def __init__(self, name, c, w):
        super().__init__(name, 'Dense', c.get('activation'))
        self.weight = nn.Parameter(torch.from_numpy(w('kernel').T.copy()))
        self.export('kernel', lambda: _np(self.weight).T)
        self.bias = None
        if c.get('use_bias', True):
            self.bias = nn.Parameter(torch.from_numpy(w('bias').copy()))
            self.export('bias', lambda: _np(self.bias))

    def core(self, x):
        if x.dim() == 4:  # Keras applies Dense to the last (channel) axis
            return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)
        return F.linear(x, self.weight, self.bias)


class BatchNormalization(Layer):
    def __init__(self, name, c, w):
        super().__init__(name, 'BatchNormalization')
        axis = c.get('axis', -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, 3, 1):
            raise UnsupportedLayer(f'layer "{name}" (BatchNormalization): axis {axis} is not supported; only the channel axis (-1)')
        self.eps = float(c.get('epsilon', 1e-3))
        self.momentum = 1.0 - float(c.get('momentum', 0.99))
        self.weight = self.bias = None
        if c.get('scale', True):
            self.weight = nn.Parameter(torch.from_numpy(w('gamma').copy()))
            self.export('gamma', lambda: _np(self.weight))
        if c.get('center', True):
            self.bias = nn.Parameter(torch.from_numpy(w('beta').copy()))
            self.export('beta', lambda: _np(self.bias))
        self.register_buffer('running_mean', torch.from_numpy(w('moving_mean').copy()))
        self.register_buffer('running_var', torch.from_numpy(w('moving_variance').copy()))
        self.export('moving_mean', lambda: _np(self.running_mean))
        self.export('moving_variance', lambda: _np(self.running_var))

    def core(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.momentum, self.eps)


class Pooling2D(Layer):
    def __init__(self, name, c, cls):
        super().__init__(name, cls)
        self.pool = _pair(c.get('pool_size', 2))
        self.stride = _pair(c.get('strides') or self.pool)
        self.padding = c.get('padding', 'valid')
        self.is_max = cls.startswith('Max')

    def core(self, x):
        if self.padding != 'same':
            return F.max_pool2d(x, self.pool, self.stride) if self.is_max else F.avg_pool2d(x, self.pool, self.stride)
        pads = _same_pads(x, self.pool, self.stride)
        if self.is_max:
            return F.max_pool2d(F.pad(x, pads, value=-math.inf), self.pool, self.stride)
        # TensorFlow averages over the pixels inside the image only.
        ones = torch.ones_like(x[:, :1])
        total = F.avg_pool2d(F.pad(x, pads), self.pool, self.stride)
        inside = F.avg_pool2d(F.pad(ones, pads), self.pool, self.stride)
        return total / inside


class GlobalPooling2D(Layer):
    def __init__(self, name, c, cls):
        super().__init__(name, cls)
        self.keepdims = bool(c.get('keepdims', False))
        self.is_max = cls.startswith('GlobalMax')

    def core(self, x):
        if self.is_max:
            return torch.amax(x, dim=(2, 3), keepdim=self.keepdims)
        return torch.mean(x, dim=(2, 3), keepdim=self.keepdims)


class Flatten(Layer):
    def core(self, x):
        # NHWC order, as Keras flattens: a Dense kernel after it reads its features where it expects them.
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return torch.flatten(x, 1)


class Dropout(Layer):
    def __init__(self, name, c):
        super().__init__(name, 'Dropout')
        self.rate = float(c.get('rate', 0.0))

    def core(self, x):
        return F.dropout(x, self.rate, self.training)


class ReLU(Layer):
    def __init__(self, name, c, cls='ReLU'):
        super().__init__(name, cls)
        mv = c.get('max_value')
        self.max_value = float(mv) if mv is not None else (6.0 if cls == 'ReLU6' else None)
        self.negative_slope = float(c.get('negative_slope', 0.0) or 0.0)
        self.threshold = float(c.get('threshold', 0.0) or 0.0)

    def core(self, x):
        return _relu(x, self.max_value, self.negative_slope, self.threshold)


class LeakyReLU(Layer):
    def __init__(self, name, c):
        super().__init__(name, 'LeakyReLU')
        self.alpha = float(c.get('alpha', 0.3))

    def core(self, x):
        return F.leaky_relu(x, self.alpha)


class Activation(Layer):
    """Keras Activation (and Softmax): the function is the layer's `act`, so logits skip it."""

    def __init__(self, name, c, cls='Activation'):
        super().__init__(name, cls, 'softmax' if cls == 'Softmax' else c.get('activation'))
        if cls == 'Softmax':
            axis = c.get('axis', -1)
            axis = -1 if axis is None else int(axis[0] if isinstance(axis, list) else axis)
            self.act = lambda x: F.softmax(x, dim=torch_dim(axis, x.dim()))


class Rescaling(Layer):
    def __init__(self, name, c):
        super().__init__(name, 'Rescaling')
        self.scale, self.offset = float(c.get('scale', 1.0)), float(c.get('offset', 0.0))

    def core(self, x):
        return x * self.scale + self.offset


class ZeroPadding2D(Layer):
    def __init__(self, name, c):
        super().__init__(name, 'ZeroPadding2D')
        p = c.get('padding', 1)
        if isinstance(p, (int, float)):
            p = [[p, p], [p, p]]
        elif all(isinstance(v, (int, float)) for v in p):
            p = [[p[0], p[0]], [p[1], p[1]]]
        (self.top, self.bottom), (self.left, self.right) = [(int(a), int(b)) for a, b in p]

    def core(self, x):
        return F.pad(x, (self.left, self.right, self.top, self.bottom))


class Merge(Layer):
    """Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate: several inputs, one output."""

    def __init__(self, name, c, cls):
        super().__init__(name, cls)
        self.axis = c.get('axis', -1)

    def core(self, xs):
        if self.cls == 'Concatenate':
            return torch.cat(xs, dim=torch_dim(int(self.axis), xs[0].dim()))
        if self.cls == 'Subtract':
            return xs[0] - xs[1]
        out = xs[0]
        for x in xs[1:]:
            out = {'Add': torch.add, 'Average': torch.add, 'Multiply': torch.mul, 'Maximum': torch.maximum, 'Minimum': torch.minimum}[self.cls](out, x)
        return out / len(xs) if self.cls == 'Average' else out


MERGES = {'Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum', 'Concatenate'}
BUILDERS = {
    'Conv2D': Conv2D,
    'DepthwiseConv2D': DepthwiseConv2D,
    'SeparableConv2D': SeparableConv2D,
    'Dense': Dense,
    'BatchNormalization': BatchNormalization,
    'MaxPooling2D': lambda n, c, w: Pooling2D(n, c, 'MaxPooling2D'),
    'AveragePooling2D': lambda n, c, w: Pooling2D(n, c, 'AveragePooling2D'),
    'GlobalAveragePooling2D': lambda n, c, w: GlobalPooling2D(n, c, 'GlobalAveragePooling2D'),
    'GlobalMaxPooling2D': lambda n, c, w: GlobalPooling2D(n, c, 'GlobalMaxPooling2D'),
    'Flatten': lambda n, c, w: Flatten(n, 'Flatten'),
    'Dropout': lambda n, c, w: Dropout(n, c),
    'ReLU': lambda n, c, w: ReLU(n, c),
    'ReLU6': lambda n, c, w: ReLU(n, c, 'ReLU6'),
    'LeakyReLU': lambda n, c, w: LeakyReLU(n, c),
    'Activation': lambda n, c, w: Activation(n, c),
    'Softmax': lambda n, c, w: Activation(n, c, 'Softmax'),
    'Rescaling': lambda n, c, w: Rescaling(n, c),
    'ZeroPadding2D': lambda n, c, w: ZeroPadding2D(n, c),
}
BUILDERS.update({m: (lambda cls: lambda n, c, w: Merge(n, c, cls))(m) for m in MERGES})
# Aliases tfjs and older Keras files use.
BUILDERS.update({'Conv2d': BUILDERS['Conv2D'], 'MaxPool2D': BUILDERS['MaxPooling2D'], 'AvgPool2D': BUILDERS['AveragePooling2D'], 'GlobalAvgPool2D': BUILDERS['GlobalAveragePooling2D']})
SUPPORTED = sorted(k for k in BUILDERS if k not in ('Conv2d', 'MaxPool2D', 'AvgPool2D', 'GlobalAvgPool2D'))


def read_model_json(path):
    with open(path, encoding='utf-8') as f:
        model_json = json.load(f)
    topology = model_json.get('modelTopology') or {}
    config = topology.get('model_config', topology)
    return model_json, config


def read_weights(path, manifest):
    """{manifest name: float32 array} from the shards next to model.json, in the manifest's order."""
    folder = os.path.dirname(os.path.abspath(path))
    out = {}
    for group in manifest or []:
        data = b''.join(open(os.path.join(folder, p), 'rb').read() for p in group['paths'])
        offset = 0
        for entry in group['weights']:
            if entry.get('quantization'):
                raise UnsupportedLayer(f'{path}: weight "{entry["name"]}" is quantized; save the model unquantized')
            dtype = {'float32': np.float32, 'int32': np.int32}.get(entry.get('dtype', 'float32'))
            if dtype is None:
                raise UnsupportedLayer(f'{path}: weight "{entry["name"]}" has dtype {entry.get("dtype")}; only float32 and int32')
            n = int(np.prod(entry['shape'])) if entry['shape'] else 1
            out[entry['name']] = np.frombuffer(data, dtype, n, offset).reshape(entry['shape']).astype(np.float32)
            offset += n * 4
    return out


def _weight_getter(weights, layer):
    def get(name):
        key = f'{layer}/{name}'
        if key in weights:
            return weights[key]
        for k, v in weights.items():
            if k.endswith('/' + key):
                return v
        raise UnsupportedLayer(f'layer "{layer}": its weight "{name}" is not in the weights manifest')
    return get


def _layers_and_edges(config):
    """(class, name, config, input names) per layer, in order; a Sequential becomes a chain."""
    cls = config.get('class_name')
    body = config.get('config', {})
    if cls == 'Sequential':
        layers = body if isinstance(body, list) else body.get('layers', [])
        out, prev = [], 'input'
        for spec in layers:
            name = spec['config'].get('name', spec['class_name'])
            if spec['class_name'] == 'InputLayer':
                continue
            out.append((spec['class_name'], name, spec['config'], [prev]))
            prev = name
        return out, 'input', prev
    if cls not in ('Model', 'Functional'):
        raise UnsupportedLayer(f'model class "{cls}" is not a tfjs Layers model (Sequential, Model or Functional)')
    out, inputs = [], body.get('input_layers', [])
    for spec in body['layers']:
        nodes = spec.get('inbound_nodes', [])
        if spec['class_name'] == 'InputLayer':
            continue
        if len(nodes) != 1:
            raise UnsupportedLayer(f'layer "{spec["name"]}" ({spec["class_name"]}) is applied {len(nodes)} times; shared layers are not supported')
        out.append((spec['class_name'], spec['name'], spec['config'], [edge[0] for edge in nodes[0]]))
    outputs = body.get('output_layers', [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayer(f'the model has {len(inputs)} inputs and {len(outputs)} outputs; one image input and one output are supported')
    return out, inputs[0][0], outputs[0][0]


def _key(name):
    return name.replace('.', '_')


class TfjsModel(nn.Module):
    """The translated graph. forward(x NHWC, logits=False); logits=True skips the head layer's activation."""

    def __init__(self, config, weights, head_layer=None):
        super().__init__()
        specs, self.input_name, self.output_name = _layers_and_edges(config)
        self.layers = nn.ModuleDict()
        self.graph = []
        for cls, name, c, inputs in specs:
            if c.get('data_format', 'channels_last') != 'channels_last':
                raise UnsupportedLayer(f'layer "{name}" ({cls}): data_format {c["data_format"]} is not supported; only channels_last')
            build = BUILDERS.get(cls)
            if build is None:
                raise UnsupportedLayer(f'layer "{name}" ({cls}) is not supported by the torchrun engine; supported: {", ".join(SUPPORTED)}')
            self.layers[_key(name)] = build(name, c, _weight_getter(weights, name))
            self.graph.append((name, inputs, cls in MERGES))
        self.head_layer = head_layer or self.output_name

    def forward(self, x, logits=False):
        values = {self.input_name: x.permute(0, 3, 1, 2).contiguous()}  # NCHW in memory too: DDP's gradient buckets expect it
        for name, inputs, multi in self.graph:
            layer = self.layers[_key(name)]
            arg = [values[i] for i in inputs] if multi else values[inputs[0]]
            values[name] = layer.core(arg) if logits and name == self.head_layer else layer(arg)
        out = values[self.output_name]
        return out.permute(0, 2, 3, 1) if out.dim() == 4 else out


def load_tfjs(path, head_layer=None):
    """(TfjsModel, model.json as a dict) for a model.json path."""
    model_json, config = read_model_json(path)
    weights = read_weights(path, model_json.get('weightsManifest'))
    return TfjsModel(config, weights, head_layer), model_json


def save_tfjs(model, model_json, folder, metadata=None):
    """Writes <folder>/model.json + weights.bin: the same topology, the trained weights in Keras layouts."""
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    for layer in model.layers.values():
        for weight, fn in layer.exports:
            arrays[f'{layer.layer_name}/{weight}'] = np.ascontiguousarray(fn(), dtype=np.float32)
    entries, chunks = [], []
    for group in model_json.get('weightsManifest') or []:
        for entry in group['weights']:
            key = next((k for k in arrays if entry['name'] == k or entry['name'].endswith('/' + k)), None)
            if key is None:
                continue  # optimizer weights and the like: not part of the trained model
            entries.append({'name': entry['name'], 'shape': list(arrays[key].shape), 'dtype': 'float32'})
            chunks.append(arrays[key].astype('<f4').tobytes())
    out = {k: v for k, v in model_json.items() if k not in ('weightsManifest', 'trainingConfig')}
    out['weightsManifest'] = [{'paths': ['weights.bin'], 'weights': entries}]
    if metadata:
        out['userDefinedMetadata'] = {**(model_json.get('userDefinedMetadata') or {}), **metadata}
    with open(os.path.join(folder, 'weights.bin'), 'wb') as f:
        f.write(b''.join(chunks))
    with open(os.path.join(folder, 'model.json'), 'w', encoding='utf-8') as f:
        json.dump(out, f)
    return os.path.join(folder, 'model.json')


def forward_cases(cases_path):
    """Tests: one forward pass per case of a JSON list {model, input, shape, output, logits, save}; raw float32 files; `save` writes the model back."""
    with open(cases_path, encoding='utf-8') as f:
        cases = json.load(f)
    for case in cases:
        model, model_json = load_tfjs(case['model'])
        if case.get('save'):
            save_tfjs(model, model_json, case['save'])
        model.eval()
        x = torch.from_numpy(np.fromfile(case['input'], dtype='<f4').reshape(case['shape']))
        with torch.no_grad():
            y = model(x, logits=bool(case.get('logits')))
        y.numpy().astype('<f4').tofile(case['output'])


if __name__ == '__main__':
    import sys
    try:
        forward_cases(sys.argv[1])
    except UnsupportedLayer as e:
        print(f'batch-advisor torchrun: {e}', file=sys.stderr)
        sys.exit(2)
