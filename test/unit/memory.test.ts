import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { budgetFromFree, bytesForBatch, estimateMemory, FIXED_OVERHEAD, GPU_RUNTIME_OVERHEAD, layerFactor, maxBatchSize, OPTIMIZER_SLOTS } from '../../src/core/memory';
import type { ModelDescription } from '../../src/core/shared/model';

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
    assert.deepEqual([scratch('sgd'), scratch('momentum'), scratch('rmsprop'), scratch('adam')], [2 * 64 * 4, 2 * 64 * 4, 12 * 64 * 4, 11 * 86 * 4]);
  });

  it('the step is the larger of the backward peak and the update peak', () => {
    const e = estimateMemory(tiny, { optimizer: 'adam', budgetBytes: BIG, headroom: 0 });
    const fixed = 344 + 344 + 688 + FIXED_OVERHEAD;
    assert.equal(e.fixedBytes, fixed);
    // adam scratch 3784 B; activations 656 B per image.
    assert.equal(bytesForBatch(e, 1), fixed + 728 + (3784 - 656)); // the update is the peak
    assert.equal(bytesForBatch(e, 5), fixed + 5 * 728 + (3784 - 5 * 656));
    assert.equal(bytesForBatch(e, 6), fixed + 6 * 728); // 6 × 656 = 3936 > 3784: the backward pass is
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
    const l = (className: string, activation?: string, useBias?: boolean) => layerFactor({ name: 'l', className, outputShape: [1], params: 0, trainableParams: 0, ...(activation ? { activation } : {}), ...(useBias !== undefined ? { useBias } : {}) });
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
    assert.equal(adam(afixed + 728 + 3128 - 1), 0);
    assert.equal(adam(afixed + 728 + 3128), 1);
    assert.equal(adam(afixed + 3 * 728 + (3784 - 3 * 656)), 3);
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
