/**
 * Entry of the trainer child process (dist/trainer.js). It is the only process that loads tfjs.
 * It talks to its host over the IPC channel only; see src/core/protocol.ts.
 */
import { parseHostMessage, PROTOCOL_VERSION, type HostMessage, type TrainerMessage } from '../core/shared/protocol';
import { resolveBackend } from './backend';
import { describeModelSpec } from './models/describe';
import { classifyTrainerError } from './errors';
import { runtimeFromEnv, setRuntime } from './runtime';
import { enableProdMode } from './tf';

// The entry point is the one place that reads the environment: the process's runtime settings
// (wasm threads, SIMD) and TensorFlow's GPU growth (set before tfjs-node-gpu can load, so TensorFlow
// does not reserve the whole card). Everything a run needs, test faults included, comes in its RunSpec.
setRuntime(runtimeFromEnv(process.env));
process.env['TF_FORCE_GPU_ALLOW_GROWTH'] ??= 'true';

// Production mode: skips tfjs's debug-time checks and its console banner ("looks like you are
// running TensorFlow.js in Node.js…"); the backend choice and its reasons are reported instead.
enableProdMode();

function send(m: TrainerMessage): void {
  if (process.send) process.send(m);
}

if (!process.send) {
  process.stderr.write('batch-advisor trainer: must be started by the extension or the CLI (no IPC channel).\n');
  process.exit(2);
}

/**
 * One AbortController per train request, made when the request ARRIVES (not when its turn comes):
 * a stop that arrives while the run is queued or still setting up (backend, listing, preloading)
 * must stop it. A stop applies to every train request received so far.
 */
const runControllers = new Set<AbortController>();
let busy: Promise<void> = Promise.resolve();

async function handle(msg: HostMessage, signal: AbortSignal): Promise<void> {
  switch (msg.type) {
    case 'describe': {
      const description = await describeModelSpec(msg.spec, msg.inputShape, msg.numClasses);
      // After the description (made on the cpu backend): the backend this choice gets here, looked for where a run looks.
      const backend = msg.backend ? await resolveBackend(msg.backend) : undefined;
      send({ v: PROTOCOL_VERSION, type: 'described', id: msg.id, description, ...(backend ? { backend } : {}) });
      return;
    }
    case 'train': {
      // Imported when a run starts: `describe` (what `suggest` asks for) never loads sharp or the data pipeline.
      const { runTraining } = await import('./train/run.js');
      await runTraining(msg, send, signal);
      return;
    }
    case 'probe': {
      // Loaded on first use, like the training run (sharp, the decoder): describe stays fast.
      const { runProbeTrial } = await import('./probe/trial.js');
      const result = await runProbeTrial(msg.setup, msg.trial);
      send({ v: PROTOCOL_VERSION, type: 'probe-result', id: msg.id, result });
      return;
    }
    case 'evaluate': {
      const { evaluateRequest } = await import('./eval/evaluate.js');
      const result = await evaluateRequest(msg);
      send({ v: PROTOCOL_VERSION, type: 'evaluated', id: msg.id, result });
      return;
    }
    case 'prepare-torchrun': {
      const { prepareTorchrun } = await import('./torchrun/prepare.js');
      const prepared = await prepareTorchrun(msg, signal, (level, message) => send({ v: PROTOCOL_VERSION, type: 'log', level, message }));
      send({ v: PROTOCOL_VERSION, type: 'prepared', id: msg.id, prepared });
      return;
    }
    case 'stop':
      return;
  }
}

process.on('message', (raw: unknown) => {
  const parsed = parseHostMessage(raw);
  if (!parsed.ok) {
    const id = (raw as { id?: unknown } | null)?.id;
    send({ v: PROTOCOL_VERSION, type: 'error', ...(Number.isInteger(id) ? { id: id as number } : {}), kind: 'internal', message: `trainer (protocol v${PROTOCOL_VERSION}) refused a message: ${parsed.error}` });
    return;
  }
  const msg = parsed.message;
  // A stop request must not queue behind the training it is meant to stop.
  if (msg.type === 'stop') {
    for (const c of runControllers) c.abort();
    return;
  }
  const controller = new AbortController();
  if (msg.type === 'train' || msg.type === 'prepare-torchrun') runControllers.add(controller);
  busy = busy.then(() =>
    handle(msg, controller.signal)
      .catch((e: unknown) => {
        const { kind, message } = classifyTrainerError(e);
        send({ v: PROTOCOL_VERSION, type: 'error', id: 'id' in msg ? msg.id : undefined, kind, message });
      })
      .finally(() => runControllers.delete(controller)),
  );
});

process.on('disconnect', () => process.exit(0));
send({ v: PROTOCOL_VERSION, type: 'ready', pid: process.pid });
