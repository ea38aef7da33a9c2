/**
 * Heads and losses as Keras defines them (src/core/shared/head.ts), and model files as they come:
 * tfjs `save()` with `includeOptimizer`, the converter's {keras_version, model_config,
 * training_config} topology, a snake_case `trainingConfig` tfjs cannot parse, a contradicting loss,
 * a layer tfjs cannot build, and preprocessing layers that train. Fixtures are built here with tfjs
 * and saved with the project's fileSaveHandler, then edited as JSON.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decideHead, parseFileLoss, type LastLayer } from '../../src/core/shared/head';
import { initBackend } from '../../src/trainer/backend';
import { BadInputError } from '../../src/trainer/errors';
import { fileSaveHandler } from '../../src/trainer/model-io';
import { describeModelSpec } from '../../src/trainer/models/describe';
import { buildClassifier } from '../../src/trainer/models/zoo';
import { tf } from '../../src/trainer/tf';
import { makeOptimizer, trainStep } from '../../src/trainer/train/step';

const dense = (units: number, activation?: string): LastLayer => ({ name: 'out', className: 'Dense', units, rank: 1, ...(activation ? { activation } : {}) });

describe('the head decision', () => {
  it('softmax, sigmoid and logit heads, with the loss Keras gives them', () => {
    const h = (last: LastLayer, classes: number, loss?: unknown) => {
      const d = decideHead(last, classes, loss, 'm.json');
      assert.ok('head' in d, JSON.stringify(d));
      return d.head;
    };
    assert.deepEqual([h(dense(10, 'softmax'), 10).loss, h(dense(10, 'softmax'), 10).logits], ['categorical', 'in-layer']);
    assert.equal(h(dense(10, 'softmax'), 10).description, 'sparse categorical cross-entropy on the softmax output (from its logits)');
    assert.equal(h({ name: 'act', className: 'Activation', activation: 'softmax', units: 10, rank: 1 }, 10).logits, 'activation-layer');
    assert.equal(h({ name: 'sm', className: 'Softmax', units: 10, rank: 1 }, 10).activation, 'softmax');
    assert.deepEqual([h(dense(1, 'sigmoid'), 2).loss, h(dense(1, 'sigmoid'), 2).description], ['binary', 'binary cross-entropy on the sigmoid output (from its logit)']);
    assert.equal(h(dense(1), 2).description, 'binary cross-entropy from logits');
    assert.deepEqual([h(dense(10), 10).logits, h(dense(10), 10).description], ['output', 'sparse categorical cross-entropy from logits']);
    // The file's own loss, in its spellings, when consistent.
    for (const loss of ['sparse_categorical_crossentropy', 'categoricalCrossentropy', { class_name: 'SparseCategoricalCrossentropy', config: { from_logits: false } }]) {
      assert.equal(h(dense(10, 'softmax'), 10, loss).loss, 'categorical');
    }
    assert.equal(h(dense(10), 10, { class_name: 'SparseCategoricalCrossentropy', config: { from_logits: true } }).logits, 'output');
    assert.equal(h(dense(1, 'sigmoid'), 2, 'binary_crossentropy').fileLoss, 'binary_crossentropy');
    assert.deepEqual(parseFileLoss(['binaryCrossentropy']), { kind: 'binary', name: 'binaryCrossentropy' });
  });

  it('a loss or head that contradicts: one line naming the file', () => {
    const err = (last: LastLayer, classes: number, loss?: unknown): string => {
      const d = decideHead(last, classes, loss, 'm.json');
      assert.ok('error' in d, JSON.stringify(d));
      assert.ok(d.error.startsWith('m.json: ') && !d.error.includes('\n'));
      return d.error;
    };
    assert.match(err(dense(10, 'softmax'), 10, 'binary_crossentropy'), /binary_crossentropy needs one output unit but the last layer "out" has 10 units with softmax/);
    assert.match(err(dense(10, 'softmax'), 10, { class_name: 'SparseCategoricalCrossentropy', config: { from_logits: true } }), /from_logits=true but the last layer "out" already applies softmax/);
    assert.match(err(dense(1, 'sigmoid'), 2, 'sparse_categorical_crossentropy'), /always 0: use binary_crossentropy/);
    assert.match(err(dense(3), 2), /outputs \[3\] per image but the dataset has 2 classes; its last layer must have 2 units \(or 1 unit with activation 'sigmoid'\)/);
    assert.match(err(dense(1, 'sigmoid'), 3), /must have 3 units/);
    assert.match(err(dense(10, 'sigmoid'), 10), /applies sigmoid to 10 units \(multi-label\)/);
    assert.match(err(dense(10, 'relu'), 10), /activation 'relu', which is not a classifier head/);
    const warned = decideHead(dense(10), 10, { class_name: 'SparseCategoricalCrossentropy', config: { from_logits: false } }, 'm.json');
    assert.ok('warnings' in warned && /from_logits=false.*outputs logits/.test(warned.warnings[0]!));
  });
});

describe('model files as they come', () => {
  let dir: string;
  let saved: string;
  const shape: [number, number, number] = [12, 12, 1];

  function convnet(head: 'softmax' | 'sigmoid' | 'linear', units: number, pre: tf.layers.Layer[] = []): tf.LayersModel {
    const m = tf.sequential();
    m.add(tf.layers.rescaling({ scale: 1 / 255, inputShape: pre.length ? [16, 16, 1] : shape, name: 'rescaling' }));
    for (const l of pre) m.add(l);
    m.add(tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }));
    m.add(tf.layers.flatten({ name: 'flatten' }));
    m.add(tf.layers.dense({ units, activation: head, name: 'head' }));
    return m;
  }

  /** The saved model.json edited by `edit`, written next to the same weights.bin. */
  function variant(name: string, edit: (json: Record<string, unknown>) => void): string {
    const out = join(dir, name);
    mkdirSync(out, { recursive: true });
    const json = JSON.parse(readFileSync(join(saved, 'model.json'), 'utf8')) as Record<string, unknown>;
    edit(json);
    copyFileSync(join(saved, 'weights.bin'), join(out, 'weights.bin'));
    writeFileSync(join(out, 'model.json'), JSON.stringify(json));
    return join(out, 'model.json');
  }

  before(async () => {
    await initBackend('wasm').catch(() => initBackend('cpu'));
    dir = mkdtempSync(join(tmpdir(), 'ba-heads-'));
    const m = convnet('softmax', 10);
    m.compile({ optimizer: tf.train.adam(0.001), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    // One fit step so Adam has moments to save (includeOptimizer writes them to the manifest).
    await m.fit(tf.zeros([2, ...shape]), tf.tensor2d([[0], [1]]), { epochs: 1, verbose: 0 });
    saved = join(dir, 'saved');
    await m.save(fileSaveHandler(saved), { includeOptimizer: true });
    m.dispose();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('tfjs save() after compile(), with includeOptimizer: loads, softmax head, optimizer weights dropped and said so', async () => {
    const json = JSON.parse(readFileSync(join(saved, 'model.json'), 'utf8'));
    const optimizerWeights = json.weightsManifest[0].weights.filter((w: { group?: string }) => w.group === 'optimizer').length;
    assert.ok(optimizerWeights >= 3, `Adam's iteration and moments are in the manifest (${optimizerWeights})`);
    const c = await buildClassifier({ model: join(saved, 'model.json') }, shape, 10);
    assert.equal(c.head.activation, 'softmax');
    assert.equal(c.head.fileLoss, 'sparse_categorical_crossentropy'); // tfjs writes Keras's name
    assert.equal(c.model.optimizer, undefined, 'tfjs did not compile the model from the file');
    assert.equal(c.notes.length, 1);
    assert.match(c.notes[0]!, new RegExp(`optimizer settings \\(Adam training config\\) are not used and its ${optimizerWeights} optimizer weights are dropped`));
    c.model.dispose();
  });

  it("a trainingConfig in Keras's snake_case (tfjs itself fails on it): loads, and says the optimizer settings are not used", async () => {
    const path = variant('snake', (j) => {
      // Keras's snake_case, with a learning-rate schedule and the betas it leaves at their defaults
      // unwritten: tfjs's Adam.fromConfig hands the missing values to tensor() and fails.
      const schedule = { module: 'keras.optimizers.schedules', class_name: 'ExponentialDecay', config: { initial_learning_rate: 0.01, decay_steps: 100, decay_rate: 0.9 } };
      j.trainingConfig = { loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'], optimizer_config: { class_name: 'Adam', config: { learning_rate: schedule, beta_1: 0.9 } } };
    });
    const raw = JSON.parse(readFileSync(path, 'utf8')) as tf.io.ModelArtifacts;
    await assert.rejects(tf.loadLayersModel({ load: async () => ({ modelTopology: raw.modelTopology, trainingConfig: raw.trainingConfig }) }), /values passed to tensor\(values\) must be/, 'tfjs alone fails on it');
    const c = await buildClassifier({ model: path }, shape, 10);
    assert.equal(c.head.fileLoss, 'sparse_categorical_crossentropy');
    assert.match(c.notes.join('\n'), /optimizer settings \(Adam training config\) are not used/);
    c.model.dispose();
  });

  it("the converter's format: modelTopology {keras_version, backend, model_config, training_config}", async () => {
    const path = variant('converted', (j) => {
      j.modelTopology = {
        keras_version: '2.15.0',
        backend: 'tensorflow',
        model_config: j.modelTopology,
        training_config: { loss: { class_name: 'SparseCategoricalCrossentropy', config: { reduction: 'auto', name: 'sparse_categorical_crossentropy', from_logits: false } }, optimizer_config: { class_name: 'Adam', config: { learning_rate: 0.001 } } },
      };
      delete j.trainingConfig;
    });
    const c = await buildClassifier({ model: path }, shape, 10);
    assert.equal(c.head.fileLoss, 'SparseCategoricalCrossentropy');
    assert.equal(c.head.logits, 'in-layer');
    assert.equal(c.notes.length, 1);
    c.model.dispose();
    const d = await describeModelSpec({ model: path }, shape, 10);
    assert.equal(d.head?.description, 'sparse categorical cross-entropy on the softmax output (from its logits)');
  });

  it('a loss that contradicts the head, and a layer tfjs cannot build: a BadInputError naming the file (and the layer)', async () => {
    const cases: [string, (j: Record<string, unknown>) => void, RegExp][] = [
      ['binary', (j) => ((j.trainingConfig as Record<string, unknown>).loss = 'binary_crossentropy'), /the file's loss binary_crossentropy needs one output unit but the last layer "head" has 10 units with softmax/],
      ['logits', (j) => ((j.trainingConfig as Record<string, unknown>).loss = { class_name: 'SparseCategoricalCrossentropy', config: { from_logits: true } }), /from_logits=true but the last layer "head" already applies softmax \(Keras would apply it twice\)/],
      [
        'flip',
        (j) => {
          const layers = ((j.modelTopology as Record<string, unknown>).config as { layers: unknown[] }).layers;
          layers.splice(1, 0, { class_name: 'RandomFlip', config: { name: 'random_flip', mode: 'horizontal', trainable: true, dtype: 'float32' } });
        },
        /layer "random_flip" \(RandomFlip\) cannot be built by TensorFlow\.js 4\.22\.0: remove it from the model and apply augmentation outside the model/,
      ],
      [
        'unknown',
        (j) => {
          const layers = ((j.modelTopology as Record<string, unknown>).config as { layers: unknown[] }).layers;
          layers.splice(1, 0, { class_name: 'MyCustomLayer', config: { name: 'custom' } });
        },
        /layer "custom" \(MyCustomLayer\) cannot be built .*: remove it, or replace it with a layer TensorFlow\.js has/,
      ],
    ];
    for (const [name, edit, re] of cases) {
      const path = variant(name, edit);
      await assert.rejects(buildClassifier({ model: path }, shape, 10), (e: Error) => {
        assert.ok(e instanceof BadInputError, `${name}: ${e.stack}`);
        assert.ok(e.message.startsWith(path), e.message);
        assert.match(e.message, re);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    }
  });

  it('Rescaling, Resizing and CenterCrop in the model: they load and train (the loss falls)', async () => {
    const m = convnet('softmax', 3, [tf.layers.resizing({ height: 14, width: 14, name: 'resize' }) as tf.layers.Layer, tf.layers.centerCrop({ height: 12, width: 12, name: 'crop' }) as tf.layers.Layer]);
    await m.save(fileSaveHandler(join(dir, 'pre')));
    m.dispose();
    const c = await buildClassifier({ model: join(dir, 'pre', 'model.json') }, [16, 16, 1], 3);
    assert.deepEqual(
      c.model.layers.map((l) => l.outputShape),
      [
        [null, 16, 16, 1],
        [null, 14, 14, 1],
        [null, 12, 12, 1],
        [null, 10, 10, 4],
        [null, 400],
        [null, 3],
      ],
    );
    const x = tf.randomUniform([6, 16, 16, 1], 0, 255, 'float32', 3);
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const opt = makeOptimizer('adam', 0.01);
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) losses.push((await trainStep(c.model, opt, [{ x, y }], c.head)).loss);
    assert.ok(losses.at(-1)! < losses[0]!, losses.join(' → '));
    tf.dispose([x, y]);
    opt.dispose();
    c.model.dispose();
  });
});
