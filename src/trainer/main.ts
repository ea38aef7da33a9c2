/**
 * Entry of the trainer child process (dist/trainer.js). It is the only process that loads tfjs.
 * It talks to its host over the IPC channel only; see src/core/protocol.ts.
 */
import { parseHostMessage, PROTOCOL_VERSION, type HostMessage, type TrainerMessage } from '../core/shared/protocol';
import { describeModelSpec } from './models/describe';
import { classifyError } from './errors';
import { enableProdMode } from './tf';

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

let stopController: AbortController | undefined;
let busy: Promise<void> = Promise.resolve();

async function handle(msg: HostMessage): Promise<void> {
  switch (msg.type) {
    case 'describe': {
      const description = await describeModelSpec(msg.spec, msg.inputShape, msg.numClasses);
      send({ v: 2, type: 'described', id: msg.id, description });
      return;
    }
    case 'train': {
      stopController = new AbortController();
      // Imported when a run starts: `describe` (what `suggest` asks for) never loads sharp or the data pipeline.
      const { runTraining } = await import('./train/run.js');
      await runTraining(msg, send, stopController.signal);
      stopController = undefined;
      return;
    }
    case 'probe': {
      // Loaded on first use, like the training run (sharp, the decoder): describe stays fast.
      const { runProbeTrial } = await import('./probe/trial.js');
      const result = await runProbeTrial(msg.config, msg.trial);
      send({ v: 2, type: 'probe-result', id: msg.id, result });
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
    send({ v: 2, type: 'error', ...(Number.isInteger(id) ? { id: id as number } : {}), kind: 'internal', message: `trainer (protocol v${PROTOCOL_VERSION}) refused a message: ${parsed.error}` });
    return;
  }
  const msg = parsed.message;
  // A stop request must not queue behind the training it is meant to stop.
  if (msg.type === 'stop') {
    stopController?.abort();
    return;
  }
  busy = busy.then(() =>
    handle(msg).catch((e: unknown) => {
      const { kind, message } = classifyError(e);
      send({ v: 2, type: 'error', id: 'id' in msg ? msg.id : undefined, kind, message });
    }),
  );
});

process.on('disconnect', () => process.exit(0));
send({ v: 2, type: 'ready', pid: process.pid });
