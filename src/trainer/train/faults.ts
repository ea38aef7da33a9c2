/**
 * Fault injection for end-to-end tests through the real child process (read from the environment by
 * the entry point only): BATCH_ADVISOR_FAULT="oom@3" throws a TensorFlow-style OOM error before
 * step 3; "delay@50" makes every step at least 50 ms longer; "nan@2" makes the model's weights NaN
 * before step 2 (a run that diverges, deterministically); "spin@3" never finishes step 3 (a stuck step).
 */
import { tf } from '../tf';
import { memoryLimitFromEnv } from './memory-limit';
import type { RunHooks } from './setup';

export function hooksFromEnv(env: NodeJS.ProcessEnv): RunHooks {
  const tfjsNodePath = env['BATCH_ADVISOR_TFJS_NODE_PATH'];
  const memoryLimitBytes = memoryLimitFromEnv(env);
  return { ...(tfjsNodePath ? { tfjsNodePath } : {}), ...(memoryLimitBytes ? { memoryLimitBytes } : {}), ...faultFromEnv(env) };
}

function faultFromEnv(env: NodeJS.ProcessEnv): RunHooks {
  const spec = env['BATCH_ADVISOR_FAULT'];
  if (!spec) return {};
  const [kind, arg] = spec.split('@');
  const beforeStep = kind ? faultStep(kind, Number(arg)) : undefined;
  return beforeStep ? { beforeStep } : {};
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
