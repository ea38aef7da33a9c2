import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { budgetFromFree, bytesForBatch, estimateMemory, FIXED_OVERHEAD, GPU_RUNTIME_OVERHEAD, layerFactor, maxBatchSize, OPTIMIZER_SLOTS, unusedInputGradientElements, WASM_PATCH_CAP_BYTES } from '../../src/core/planning/memory';
import { backwardSweep, sweepForwardFactor, sweepWorkspaces, workspaceBytes } from '../../src/core/planning/memory-sweep';
import type { LayerDescription, ModelDescription } from '../../src/core/shared/model';

/**
 * A tiny model, by hand (float32 = 4 bytes):
 *   conv   Conv2D 3×3, 1 → 2 channels, bias, relu: out [4,4,2] = 32 elements, params 3·3·1·2 + 2 = 20
 *          factor 2 (conv + its gradient) + 2 (relu output + its gradient) + 1 (separate bias add) = 5
 *          → 5 × 32 × 4 = 640 B per image
 *   flat   Flatten: out [32], a reshape sharing its buffer → 0 B
 *   dense  Dense 32 → 2, bias, linear (bias fused): out [2], params 32·2 + 2 = 66
 *          factor 2 → 2 × 2 × 4 = 16 B per image
 * activations 656 B per image; input 4·4·1 pixels + 2 one-hot labels = 18 floats = 72 B per image
 * perSample = 728 B.  Params 86 (all trainable): weights 344 B, gradients 344 B.
 * Largest single weight: the dense kernel, 64 elements.
 */
const tiny: ModelDescription = {
  name: 'tiny',
  inputShape: [4, 4, 1],
  numClasses: 2,
  layers: [
    { name: 'conv', className: 'Conv2D', outputShape: [4, 4, 2], params: 20, trainableParams: 20, activation: 'relu', useBias: true },
    { name: 'flat', className: 'Flatten', outputShape: [32], params: 0, trainableParams: 0 },
    { name: 'dense', className: 'Dense', outputShape: [2], params: 66, trainableParams: 66, activation: 'linear', useBias: true },
  ],
  totalParams: 86,
  trainableParams: 86,
};

const BIG = 2 ** 40;

/** A one-element layer of a class, with an activation and bias when given (for factor tables). */
function unitLayer(className: string, activation?: string, useBias?: boolean): LayerDescription {
  return { name: 'l', className, outputShape: [1], params: 0, trainableParams: 0, ...(activation ? { activation } : {}), ...(useBias !== undefined ? { useBias } : {}) };
}

describe('estimateMemory on a hand-computed model', () => {
  it('breaks the step down into weights, gradients, slots, activations and input', () => {
    const e = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: BIG, headroom: 0.1 });
    assert.deepEqual(e.breakdown, {
      weightsBytes: 344,
      gradientsBytes: 344,
      optimizerBytes: 0,
      activationBytesPerSample: 656,
      inputBytesPerSample: 72,
      overheadBytes: FIXED_OVERHEAD,
      updateScratchBytes: 512, // sgd: c·g and the new value of the largest weight, 2 × 64 × 4
    });
    assert.equal(e.perSampleBytes, 728);
    assert.equal(e.fixedBytes, 344 + 344 + FIXED_OVERHEAD);
    assert.equal(e.headroom, 0.1);
    assert.equal(e.budgetBytes, BIG);
  });

  it('optimizer slots: sgd 0×, momentum 1×, adam 2×, rmsprop 2× the trainable weights', () => {
    assert.deepEqual(OPTIMIZER_SLOTS, { sgd: 0, momentum: 1, adam: 2, rmsprop: 2 });
    const slots = (o: 'sgd' | 'momentum' | 'adam' | 'rmsprop') => estimateMemory(tiny, { optimizer: o, budgetBytes: BIG, headroom: 0 }).breakdown.optimizerBytes;
    assert.deepEqual([slots('sgd'), slots('momentum'), slots('adam'), slots('rmsprop')], [0, 344, 688, 688]);
    // Frozen weights get no gradient and no slots, but still take memory.
    const frozen = { ...tiny, trainableParams: 66, layers: tiny.layers.map((l) => (l.name === 'conv' ? { ...l, trainableParams: 0 } : l)) };
    const f = estimateMemory(frozen, { optimizer: 'adam', budgetBytes: BIG, headroom: 0 }).breakdown;
    assert.deepEqual([f.weightsBytes, f.gradientsBytes, f.optimizerBytes], [344, 264, 528]);
  });

  it('update scratch: per largest weight for sgd/momentum/rmsprop, every weight for adam', () => {
    const scratch = (o: 'sgd' | 'momentum' | 'adam' | 'rmsprop') => estimateMemory(tiny, { optimizer: o, budgetBytes: BIG, headroom: 0 }).breakdown.updateScratchBytes;
    assert.deepEqual([scratch('sgd'), scratch('momentum'), scratch('rmsprop'), scratch('adam')], [2 * 64 * 4, 4 * 64 * 4, 14 * 64 * 4, (11 * 86 + 64) * 4]);
  });

  it('the step is the larger of the backward peak and the update peak', () => {
    const e = estimateMemory(tiny, { optimizer: 'adam', budgetBytes: BIG, headroom: 0 });
    const fixed = 344 + 344 + 688 + FIXED_OVERHEAD;
    assert.equal(e.fixedBytes, fixed);
    // adam scratch (11 × 86 + 64) × 4 = 4040 B; activations 656 B per image.
    assert.equal(bytesForBatch(e, 1), fixed + 728 + (4040 - 656)); // the update is the peak
    assert.equal(bytesForBatch(e, 6), fixed + 6 * 728 + (4040 - 6 * 656));
    assert.equal(bytesForBatch(e, 7), fixed + 7 * 728); // 7 × 656 = 4592 > 4040: the backward pass is
  });

  it('layer factors follow the probes: ReLU6 costs more than ReLU, unknown classes get the default', () => {
    assert.equal(layerFactor({ name: 'r', className: 'ReLU', outputShape: [1], params: 0, trainableParams: 0, activation: 'relu6' }), 4);
    assert.equal(layerFactor({ name: 'r', className: 'ReLU', outputShape: [1], params: 0, trainableParams: 0 }), 2);
    assert.equal(layerFactor({ name: 'c', className: 'Conv2D', outputShape: [1], params: 0, trainableParams: 0, activation: 'linear', useBias: true }), 2);
    assert.equal(layerFactor({ name: 'c', className: 'Conv2D', outputShape: [1], params: 0, trainableParams: 0, activation: 'relu', useBias: false }), 4);
    assert.equal(layerFactor({ name: 'b', className: 'BatchNormalization', outputShape: [1], params: 0, trainableParams: 0 }), 10);
    assert.equal(layerFactor({ name: 'x', className: 'SomethingNew', outputShape: [1], params: 0, trainableParams: 0 }), 6);
  });

  it('v2 factors (bench/memory-model.ts --probe): separable convs, tanh/elu inside a layer, LeakyReLU, Concatenate', () => {
    const l = (className: string, activation?: string, useBias?: boolean) => layerFactor(unitLayer(className, activation, useBias));
    assert.equal(l('SeparableConv2D', 'linear', false), 4);
    assert.equal(l('SeparableConv2D', 'relu', true), 7);
    assert.equal(l('DepthwiseConv2D', 'relu', true), 5);
    assert.equal(l('Conv2D', 'tanh', true), 4);
    assert.equal(l('Conv2D', 'elu', true), 4);
    assert.equal(l('Activation', 'tanh'), 3);
    assert.equal(l('Activation', 'elu'), 2);
    assert.equal(l('LeakyReLU'), 2.25);
    assert.equal(l('Concatenate'), 2.5);
  });

  it('wasm forward factors (bench/memory-model.ts --probe --wasm, "forward" column): fused BatchNormalization and ReLU6 keep one tensor', () => {
    const l = (className: string, activation?: string, useBias?: boolean) => sweepForwardFactor(unitLayer(className, activation, useBias));
    assert.equal(l('Conv2D', 'linear', true), 1);
    assert.equal(l('Conv2D', 'relu', true), 3);
    assert.equal(l('Conv2D', 'relu', false), 2);
    assert.equal(l('Conv2D', 'tanh', true), 2);
    assert.equal(l('SeparableConv2D', 'relu', true), 4);
    assert.equal(l('BatchNormalization'), 1);
    assert.equal(l('ReLU', 'relu6'), 1);
    assert.equal(l('Dropout'), 1, 'its mask is off the gradient path: counted for the whole step instead');
    assert.equal(l('Activation', 'swish'), 2);
    assert.equal(l('Flatten'), 0);
  });

  it('GlobalAveragePooling2D keeps a tensor the size of its input for the backward pass', () => {
    const gap = (inputElements?: number): ModelDescription => ({ ...tiny, layers: [{ name: 'g', className: 'GlobalAveragePooling2D', outputShape: [8], params: 0, trainableParams: 0, ...(inputElements ? { inputElements } : {}) }] });
    const a = estimateMemory(gap(), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).breakdown.activationBytesPerSample;
    const b = estimateMemory(gap(1024), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).breakdown.activationBytesPerSample;
    assert.equal(b - a, 1024 * 4);
  });

  it('unknown layer classes are named in the estimate', () => {
    const odd: ModelDescription = { ...tiny, layers: [...tiny.layers, { name: 'x', className: 'SomethingNew', outputShape: [2], params: 0, trainableParams: 0 }] };
    assert.deepEqual(estimateMemory(odd, { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).unknownLayers, ['SomethingNew']);
    assert.equal(estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).unknownLayers, undefined);
  });

  it('gradient accumulation adds a second gradient-sized buffer (the running sum)', () => {
    const acc = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: BIG, headroom: 0, accumulationSteps: 4 });
    assert.equal(acc.breakdown.gradientsBytes, 2 * 344);
    assert.equal(estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: BIG, headroom: 0, accumulationSteps: 1 }).breakdown.gradientsBytes, 344);
  });

  it('wasm: the budget is capped by the 4 GiB heap and leaves room for the allocator (1.42× the live tensors)', () => {
    const GIB = 2 ** 30;
    const big = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: 18 * GIB, headroom: 0.1, backend: 'wasm' });
    assert.equal(big.budgetBytes, Math.floor((4294901760 * 0.9) / 1.42)); // ≈ 2.5 GiB of live tensors
    assert.match(big.budgetNote ?? '', /4 GiB heap less 10% headroom/);
    const small = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: 1.42 * GIB, headroom: 0.1, backend: 'wasm' });
    assert.equal(small.budgetBytes, GIB);
    assert.equal(estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: 18 * GIB, headroom: 0.1 }).budgetNote, undefined);
  });

  it('tensorflow-gpu adds the CUDA runtime to the fixed part', () => {
    const cpu = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 });
    const gpu = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: BIG, headroom: 0, backend: 'tensorflow-gpu' });
    assert.equal(gpu.fixedBytes - cpu.fixedBytes, GPU_RUNTIME_OVERHEAD);
  });
});

describe('budget, maximum batch and table', () => {
  it('budget = free × (1 − headroom), headroom 10% by default', () => {
    assert.equal(budgetFromFree(8 * 2 ** 30), Math.floor(8 * 2 ** 30 * 0.9));
    assert.equal(budgetFromFree(1000, 0.25), 750);
    assert.equal(budgetFromFree(1000, 0), 1000);
  });

  it('a budget of exactly batch n fits n; one byte less fits n − 1', () => {
    const at = (budgetBytes: number) => maxBatchSize({ ...estimateMemory(tiny, { optimizer: 'sgd', budgetBytes, headroom: 0 }) });
    const fixed = 344 + 344 + FIXED_OVERHEAD; // sgd scratch 256 B < 656 B of activations from batch 1 on
    assert.equal(at(fixed + 10 * 728), 10);
    assert.equal(at(fixed + 10 * 728 - 1), 9);
    assert.equal(at(fixed + 728), 1);
    assert.equal(at(fixed + 727), 0);
    assert.equal(at(0), 0);
    // With the adam update as the peak for small batches.
    const adam = (budgetBytes: number) => maxBatchSize(estimateMemory(tiny, { optimizer: 'adam', budgetBytes, headroom: 0 }));
    const afixed = 344 + 344 + 688 + FIXED_OVERHEAD;
    assert.equal(adam(afixed + 728 + 3384 - 1), 0);
    assert.equal(adam(afixed + 728 + 3384), 1);
    assert.equal(adam(afixed + 3 * 728 + (4040 - 3 * 656)), 3);
  });

  it('the table lists powers of two up to the first that does not fit', () => {
    const fixed = 344 + 344 + FIXED_OVERHEAD;
    const e = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: fixed + 10 * 728, headroom: 0.1 });
    assert.deepEqual(e.table, [
      { batchSize: 1, bytes: fixed + 728, fits: true },
      { batchSize: 2, bytes: fixed + 2 * 728, fits: true },
      { batchSize: 4, bytes: fixed + 4 * 728, fits: true },
      { batchSize: 8, bytes: fixed + 8 * 728, fits: true },
      { batchSize: 16, bytes: fixed + 16 * 728, fits: false },
    ]);
    const none = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: 100, headroom: 0.1 });
    assert.deepEqual(none.table, [{ batchSize: 1, bytes: fixed + 728, fits: false }]);
    const exact = estimateMemory(tiny, { optimizer: 'sgd', budgetBytes: fixed + 8 * 728, headroom: 0.1 });
    assert.deepEqual(
      exact.table.map((r) => [r.batchSize, r.fits]),
      [
        [1, true],
        [2, true],
        [4, true],
        [8, true],
        [16, false],
      ],
    );
  });
});

/**
 * The wasm backward sweep, by hand (floats per image; × 4 for bytes). Input 8×8×1 = 64.
 *   conv   Conv2D 3×3 'same', 1 → 4, bias, relu: out 256, forward 3 (conv, bias add, relu) = 768
 *          stage = its output 256 + the gradient into it 256 (none for the model input: relu) = 512
 *   pool   MaxPooling2D 2: out 64 (input 256), forward 64
 *          stage = conv's 768 kept + its output 64 + gradient in 64 + gradient for its input 256 = 1152
 *   flat   Flatten: a reshape, nothing of its own; stage = 768 + 64 = 832
 *   dense  Dense 64 → 2, linear, bias: stage = 832 + 2 + 2 + 64 = 900
 * The peak, 1152 floats = 4608 B, is at the interior pooling layer, not the sum of all layers.
 */
describe('wasm: activations are freed during the backward pass (a sweep from the last layer to the first)', () => {
  const conv = { name: 'conv', className: 'Conv2D', outputShape: [8, 8, 4], params: 40, trainableParams: 40, activation: 'relu', useBias: true, strides: [1, 1], inputElements: 64 };
  const pool = { name: 'pool', className: 'MaxPooling2D', outputShape: [4, 4, 4], params: 0, trainableParams: 0, inputElements: 256 };
  const flat = { name: 'flat', className: 'Flatten', outputShape: [64], params: 0, trainableParams: 0, inputElements: 64 };
  const dense = { name: 'dense', className: 'Dense', outputShape: [2], params: 130, trainableParams: 130, activation: 'linear', useBias: true, inputElements: 64 };
  const model = (...layers: ModelDescription['layers']): ModelDescription => ({ ...tiny, inputShape: [8, 8, 1], layers, totalParams: 170, trainableParams: 170 });

  it('the peak is the largest stage, here at an interior layer', () => {
    const s = backwardSweep(model(conv, pool, flat, dense));
    assert.deepEqual(s.stages, [512 * 4, 1152 * 4, 832 * 4, 900 * 4]);
    assert.equal(s.peakBytesPerSample, 1152 * 4);
    const e = estimateMemory(model(conv, pool, flat, dense), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0, backend: 'wasm' });
    assert.equal(e.breakdown.activationBytesPerSample, 1152 * 4);
    assert.equal(e.perSampleBytes, 1152 * 4 + (64 + 2) * 4);
    // The cpu backend keeps everything until the backward pass ends: the sum of all factors (5·256 + 2·64 + 2·2).
    assert.equal(estimateMemory(model(conv, pool, flat, dense), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).breakdown.activationBytesPerSample, (5 * 256 + 2 * 64 + 2 * 2) * 4);
  });

  it("a Dropout mask stays for the whole step; a residual Add's shortcut gradient waits for the layers before it", () => {
    const drop = { name: 'drop', className: 'Dropout', outputShape: [4, 4, 4], params: 0, trainableParams: 0, inputElements: 64 };
    const base = backwardSweep(model(conv, pool, flat, dense)).stages;
    const withDrop = backwardSweep(model(conv, pool, drop, flat, dense)).stages;
    assert.equal(withDrop[0]! - base[0]!, 3 * 64 * 4, 'the mask (3 per element) is alive at the first layer too');
    const add = { name: 'add', className: 'Add', outputShape: [4, 4, 4], params: 0, trainableParams: 0, inputElements: 64 };
    const withAdd = backwardSweep(model(conv, pool, add, flat, dense)).stages;
    assert.equal(withAdd[1]! - base[1]!, 64 * 4, 'the shortcut gradient (64 floats) is alive while pool is visited');
  });

  it('a layer class without measured factors counts 3 forward and 3 backward tensors per element', () => {
    const odd = { name: 'odd', className: 'SomethingNew', outputShape: [4, 4, 4], params: 0, trainableParams: 0, inputElements: 64 };
    const e = estimateMemory(model(conv, pool, odd, flat, dense), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0, backend: 'wasm' });
    // At odd: 768 + 64 kept + its output 64 + gradient in (1 + 3) × 64 + for its input 64 = 1216 floats, above pool's 1152.
    assert.equal(e.breakdown.activationBytesPerSample, 1216 * 4);
    assert.deepEqual(e.unknownLayers, ['SomethingNew']);
  });

  it("a conv's scratch adds only what exceeds the room below the peak at its stage", () => {
    // conv: patch 8·8 × 3·3·1 = 576 floats + the input copy 64; room 1152 − 512 = 640 floats: exactly filled.
    const ws = sweepWorkspaces(model(conv, pool, flat, dense), backwardSweep(model(conv, pool, flat, dense)));
    assert.deepEqual(ws, [{ cappedBytesPerSample: 576 * 4, restBytesPerSample: (64 - 640) * 4 }]);
    const e = estimateMemory(model(conv, pool, flat, dense), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0, backend: 'wasm' });
    assert.equal(bytesForBatch(e, 10), e.fixedBytes + e.perSampleBytes * 10);
    assert.equal(e.breakdown.workspaceCapBytes, WASM_PATCH_CAP_BYTES);
    // Alone, the conv is the peak and its whole scratch adds.
    const alone = estimateMemory(model(conv), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0, backend: 'wasm' });
    assert.equal(bytesForBatch(alone, 10) - (alone.fixedBytes + alone.perSampleBytes * 10), (576 + 64) * 4 * 10);
    // Off wasm there is no such scratch.
    assert.equal(estimateMemory(model(conv), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).breakdown.workspaceBytesPerSample, undefined);
  });

  it('the step takes the conv whose scratch is largest at its batch (the patch matrix is capped)', () => {
    const list = [
      { cappedBytesPerSample: 1000, restBytesPerSample: 0 },
      { cappedBytesPerSample: 0, restBytesPerSample: 600 },
    ];
    assert.equal(workspaceBytes(list, 5, 10_000), 5000);
    assert.equal(workspaceBytes(list, 20, 10_000), 12_000);
    assert.equal(workspaceBytes([{ cappedBytesPerSample: 100, restBytesPerSample: -200 }], 3, 10_000), 0);
  });

  it('a stride-2 conv counts its zero-inserted output gradient when that is the larger scratch', () => {
    const wide = { name: 'stem', className: 'Conv2D', outputShape: [4, 4, 64], params: 640, trainableParams: 640, activation: 'linear', useBias: true, strides: [2, 2], inputElements: 81 };
    const m = { ...model(wide), inputShape: [9, 9, 1] as [number, number, number] };
    // patch 16 × 9 = 144 floats + copy 81 < the zero-inserted 7×7×64 = 3136; a single layer: no room below the peak.
    assert.deepEqual(sweepWorkspaces(m, backwardSweep(m)), [{ cappedBytesPerSample: 0, restBytesPerSample: 3136 * 4 }]);
  });
});

describe('the unused input gradient of a fused first layer', () => {
  const stem = { name: 'stem', className: 'Conv2D', outputShape: [4, 4, 4], params: 40, trainableParams: 40, activation: 'linear', useBias: true, strides: [2, 2], inputElements: 81 };
  const bn = { name: 'bn', className: 'BatchNormalization', outputShape: [4, 4, 4], params: 16, trainableParams: 8, inputElements: 64 };
  const conv = { name: 'conv', className: 'Conv2D', outputShape: [4, 4, 8], params: 296, trainableParams: 296, activation: 'linear', useBias: true, strides: [1, 1], inputElements: 64 };
  const model = (...layers: ModelDescription['layers']): ModelDescription => ({ ...tiny, inputShape: [9, 9, 1], layers });

  it('a first layer fused with a linear (or tanh) activation computes a gradient for the model input that nothing uses', () => {
    assert.equal(unusedInputGradientElements(model(stem, bn, conv)), 81);
    assert.equal(unusedInputGradientElements(model({ ...stem, activation: 'tanh' })), 81);
    assert.equal(unusedInputGradientElements(model({ ...stem, activation: 'relu' })), 0, 'relu is not fused while recording gradients: the input gradient is skipped');
    assert.equal(unusedInputGradientElements(model(bn, conv)), 0, 'only Conv2D/Dense');
    const a = estimateMemory(model(stem, bn, conv), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).breakdown.activationBytesPerSample;
    const b = estimateMemory(model({ ...stem, activation: 'relu' }, bn, conv), { optimizer: 'sgd', budgetBytes: BIG, headroom: 0 }).breakdown.activationBytesPerSample;
    // relu adds its own 2 + 1 (bias add) per output element; the unused input gradient goes away.
    assert.equal(b - a, 3 * 64 * 4 - 81 * 4);
  });
});
