import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BadInputError } from '../../src/trainer/errors';
import { fileSaveHandler, loadLayersModelFromFile } from '../../src/trainer/model-io';
import { describeModelSpec } from '../../src/trainer/models/describe';
import { buildModel, makeDivisible } from '../../src/trainer/models/zoo';
import { tf } from '../../src/trainer/tf';

function layer(d: Awaited<ReturnType<typeof describeModelSpec>>, name: string) {
  const l = d.layers.find((x) => x.name === name);
  assert.ok(l, `layer ${name} missing`);
  return l;
}

describe('model zoo', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('tutorial-cnn matches the Keras tutorial, counted by hand', async () => {
    const d = await describeModelSpec({ model: 'tutorial-cnn' }, [32, 32, 3], 10);
    assert.deepEqual(
      d.layers.map((l) => [l.className, l.outputShape, l.params]),
      [
        ['Rescaling', [32, 32, 3], 0],
        ['Conv2D', [32, 32, 16], 3 * 3 * 3 * 16 + 16], // 448
        ['MaxPooling2D', [16, 16, 16], 0],
        ['Conv2D', [16, 16, 32], 3 * 3 * 16 * 32 + 32], // 4,640
        ['MaxPooling2D', [8, 8, 32], 0],
        ['Conv2D', [8, 8, 64], 3 * 3 * 32 * 64 + 64], // 18,496
        ['MaxPooling2D', [4, 4, 64], 0],
        ['Flatten', [1024], 0],
        ['Dense', [128], 1024 * 128 + 128], // 131,200
        ['Dense', [10], 128 * 10 + 10], // 1,290: logits
      ],
    );
    assert.equal(d.totalParams, 156074);
    assert.equal(d.trainableParams, 156074);
    assert.deepEqual(d.inputShape, [32, 32, 3]);
    assert.equal(layer(d, 'conv2d_1').activation, 'relu');
    assert.equal(layer(d, 'conv2d_1').useBias, true);
    assert.equal(layer(d, 'logits').activation, 'linear');
  });

  it('tutorial-cnn outputs logits for a batch', async () => {
    const m = await buildModel({ model: 'tutorial-cnn' }, [32, 32, 3], 10);
    const y = m.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor;
    assert.deepEqual(y.shape, [2, 10]);
    tf.dispose(y);
    m.dispose();
  });

  it('mobilenet-v2 has Keras MobileNetV2 parameter counts at 224×224×3 / 1000 classes', async () => {
    const d = await describeModelSpec({ model: 'mobilenet-v2' }, [224, 224, 3], 1000);
    assert.equal(d.totalParams, 3_538_984); // keras.applications.MobileNetV2(): Total params
    assert.equal(d.trainableParams, 3_504_872); // Trainable params (BN moving stats are not)
    assert.deepEqual(layer(d, 'Conv_1').outputShape, [7, 7, 1280]);
  });

  it('mobilenet-v2 at 32×32×3 / 10 classes: shapes, residual adds, width multiplier', async () => {
    const d = await describeModelSpec({ model: 'mobilenet-v2' }, [32, 32, 3], 10);
    assert.deepEqual(layer(d, 'Conv1').outputShape, [16, 16, 32]);
    assert.deepEqual(layer(d, 'block_1_expand').outputShape, [16, 16, 96]); // 6 × 16
    assert.deepEqual(layer(d, 'block_1_depthwise').outputShape, [8, 8, 96]);
    assert.deepEqual(layer(d, 'block_16_project').outputShape, [1, 1, 320]);
    assert.deepEqual(layer(d, 'global_average_pooling2d').outputShape, [1280]);
    assert.deepEqual(layer(d, 'logits').outputShape, [10]);
    assert.equal(layer(d, 'logits').params, 1280 * 10 + 10);
    // Residual adds where stride 1 and channels match: blocks 2, 4, 5, 7, 8, 9, 11, 12, 14, 15.
    assert.deepEqual(
      d.layers.filter((l) => l.className === 'Add').map((l) => l.name),
      [2, 4, 5, 7, 8, 9, 11, 12, 14, 15].map((i) => `block_${i}_add`),
    );
    assert.equal(d.totalParams, 2_270_794); // 3,538,984 − 1,281,000 (1000-class head) + 12,810
    assert.equal(layer(d, 'Conv1_relu').activation, 'relu6');

    const small = await describeModelSpec({ model: 'mobilenet-v2', widthMultiplier: 0.35 }, [32, 32, 3], 10);
    assert.deepEqual(layer(small, 'Conv1').outputShape, [16, 16, makeDivisible(32 * 0.35)]); // 16
    assert.deepEqual(layer(small, 'block_16_project').outputShape, [1, 1, 112]); // make_divisible(int(320 × 0.35))
    assert.deepEqual(layer(small, 'Conv_1').outputShape, [1, 1, 1280]); // alpha ≤ 1 keeps 1280
    assert.ok(small.totalParams < d.totalParams / 4);
  });

  it('makeDivisible rounds like Keras _make_divisible', () => {
    assert.equal(makeDivisible(32), 32);
    assert.equal(makeDivisible(11.2), 16); // never below 8, and ≥ 90% of v
    assert.equal(makeDivisible(24 * 0.75), 24); // 18 → 16 would be < 90% → 24
    assert.equal(makeDivisible(1280 * 1.4), 1792);
  });

  it('resnet-small is ResNet-20: 272,474 trainable parameters, counted by hand', async () => {
    const d = await describeModelSpec({ model: 'resnet-small' }, [32, 32, 3], 10);
    // stem 3·3·3·16 + BN(16)·2 = 464; stage 1: 3 × (2 × 3·3·16·16 + 2 × 32) = 14,016;
    // stage 2: (3·3·16·32 + 3·3·32·32 + 16·32 + 3 × 64) + 2 × (2 × 3·3·32·32 + 128) = 51,648;
    // stage 3: (3·3·32·64 + 3·3·64·64 + 32·64 + 3 × 128) + 2 × (2 × 3·3·64·64 + 256) = 205,696; head 64·10 + 10 = 650.
    assert.equal(d.trainableParams, 464 + 14_016 + 51_648 + 205_696 + 650);
    assert.equal(d.totalParams - d.trainableParams, 1568); // BN moving mean + variance
    assert.deepEqual(layer(d, 'stage1_block3_out').outputShape, [32, 32, 16]);
    assert.deepEqual(layer(d, 'stage2_block1_proj').outputShape, [16, 16, 32]);
    assert.deepEqual(layer(d, 'stage3_block3_out').outputShape, [8, 8, 64]);
    assert.deepEqual(layer(d, 'logits').outputShape, [10]);
    assert.equal(d.layers.filter((l) => l.className === 'Add').length, 9);
  });

  it('an unknown name is a BadInputError listing the zoo', async () => {
    await assert.rejects(buildModel({ model: 'vgg16' }, [32, 32, 3], 10), (e: Error) => {
      assert.ok(e instanceof BadInputError);
      assert.match(e.message, /unknown model "vgg16".*tutorial-cnn, mobilenet-v2, resnet-small/);
      return true;
    });
  });
});

describe('user model.json', () => {
  let dir: string;
  let modelJson: string;
  before(async () => {
    await tf.setBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'ba-models-'));
    const m = tf.sequential({
      layers: [tf.layers.conv2d({ filters: 4, kernelSize: 3, inputShape: [8, 8, 1], activation: 'relu' }), tf.layers.flatten(), tf.layers.dense({ units: 3 })],
    });
    await m.save(fileSaveHandler(join(dir, 'saved')));
    m.dispose();
    modelJson = join(dir, 'saved', 'model.json');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('saves with fileSaveHandler and loads back with the same weights', async () => {
    const original = await loadLayersModelFromFile(modelJson);
    const built = await buildModel({ model: modelJson }, [8, 8, 1], 3);
    const [a, b] = [original.getWeights(), built.getWeights()];
    assert.equal(a.length, b.length);
    a.forEach((w, i) => assert.deepEqual(Array.from(w.dataSync()), Array.from((b[i] as tf.Tensor).dataSync())));
    original.dispose();
    built.dispose();
    const d = await describeModelSpec({ model: modelJson }, [8, 8, 1], 3);
    assert.equal(d.name, modelJson);
    assert.deepEqual(
      d.layers.map((l) => [l.className, l.outputShape, l.params]),
      [
        ['Conv2D', [6, 6, 4], 3 * 3 * 1 * 4 + 4],
        ['Flatten', [144], 0],
        ['Dense', [3], 144 * 3 + 3],
      ],
    );
  });

  it('input shape or class count mismatch → BadInputError naming the file', async () => {
    await assert.rejects(buildModel({ model: modelJson }, [16, 16, 1], 3), (e: Error) => e instanceof BadInputError && e.message.includes(modelJson) && /expects input \[8, 8, 1\]/.test(e.message));
    await assert.rejects(buildModel({ model: modelJson }, [8, 8, 1], 5), (e: Error) => e instanceof BadInputError && e.message.includes(modelJson) && /5 classes/.test(e.message));
  });

  it('bad JSON, a non-Layers model, a missing file or shard → BadInputError naming the file', async () => {
    const cases: [string, string, RegExp][] = [
      ['bad.json', '{"modelTopology": ', /not valid JSON/],
      ['graph.json', JSON.stringify({ format: 'graph-model', modelTopology: { node: [] } }), /graph model/],
      ['other.json', JSON.stringify({ modelTopology: { class_name: 'Dense', config: {} } }), /not a tfjs Layers model/],
      ['nomanifest.json', JSON.stringify({ weightsManifest: 3, modelTopology: { class_name: 'Sequential', config: { layers: [] } } }), /weightsManifest/],
    ];
    for (const [name, text, re] of cases) {
      const p = join(dir, name);
      writeFileSync(p, text);
      await assert.rejects(buildModel({ model: p }, [8, 8, 1], 3), (e: Error) => e instanceof BadInputError && e.message.startsWith(p) && re.test(e.message));
    }
    const missing = join(dir, 'nope', 'model.json');
    await assert.rejects(buildModel({ model: missing }, [8, 8, 1], 3), (e: Error) => e instanceof BadInputError && e.message === `${missing}: model file not found`);
    unlinkSync(join(dir, 'saved', 'weights.bin'));
    await assert.rejects(
      buildModel({ model: modelJson }, [8, 8, 1], 3),
      (e: Error) => e instanceof BadInputError && e.message.includes(join(dir, 'saved', 'weights.bin')) && e.message.includes(modelJson),
    );
  });
});
