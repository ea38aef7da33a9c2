/**
 * Fault injection for tests through the real child process, from the RunSpec's `test.fault` (which
 * the host's entry points read from BATCH_ADVISOR_FAULT): "oom@3" throws a TensorFlow-style OOM
 * error before step 3; "delay@50" makes every step at least 50 ms longer; "nan@2" makes the model's
 * weights NaN before step 2 (a run that diverges, deterministically); "spin@3" never finishes step 3
 * (a stuck step).
 */
import type { RunTest } from '../../core/shared/run-spec';
import { tf } from '../tf';
import type { RunHooks } from './setup';

/** The hooks with the spec's fault added before any `beforeStep` the caller gave. */
export function withFault(hooks: RunHooks, test: RunTest | undefined): RunHooks {
  const [kind, arg] = (test?.fault ?? '').split('@');
  const fault = kind ? faultStep(kind, Number(arg)) : undefined;
  if (!fault) return hooks;
  const before = hooks.beforeStep;
  return {
    ...hooks,
    beforeStep: (step, model) => {
      fault(step, model);
      before?.(step, model);
    },
  };
}

function faultStep(kind: string, n: number): RunHooks['beforeStep'] {
  switch (kind) {
    case 'oom':
      return (step) => {
        if (step === n) throw new Error('OOM when allocating tensor with shape[32,64,64,32] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc (injected)');
      };
    case 'nan':
      return (step, model) => {
        if (step === n) model.setWeights(model.getWeights().map((w) => tf.fill(w.shape, NaN)));
      };
    case 'spin':
      // A step that never ends, as the wasm backend's when its heap is exhausted (the host's watchdog ends it).
      return (step) => {
        // eslint-disable-next-line no-empty
        if (step === n) for (;;) {}
      };
    case 'delay':
      return () => {
        const t = performance.now();
        while (performance.now() - t < n) {
          /* a slow step */
        }
      };
    default:
      return undefined;
  }
}
