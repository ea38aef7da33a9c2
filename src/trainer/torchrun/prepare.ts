/**
 * A torchrun engine run, prepared where our own run would decide the same things: the dataset
 * listed, its unusable files left out and split with the run's seed (train/data.ts), the model built
 * or loaded with its initial weights and saved as tfjs files for the Python translator, and the head
 * decided (models/head.ts). The run folder's run.json is made from this on the host; nothing trains here.
 */
import { join } from 'node:path';
import { checkRunSpec } from '../../core/shared/run-spec';
import type { LogEvent, PrepareTorchrunRequest, TorchrunPrepared } from '../../core/shared/protocol';
import { BadInputError } from '../errors';
import { fileSaveHandler } from '../model-io';
import { buildClassifier } from '../models/zoo';
import { tf } from '../tf';
import { splitUsable } from '../train/data';

export async function prepareTorchrun(msg: PrepareTorchrunRequest, signal: AbortSignal, log: (level: LogEvent['level'], message: string) => void): Promise<TorchrunPrepared> {
  const checked = checkRunSpec(msg.spec);
  if (!checked.ok) throw new BadInputError(`the torchrun run cannot be prepared: ${checked.error}`);
  const spec = checked.value;
  const notes: string[] = [];
  let skipped = 0;
  const split = await splitUsable(spec.data, {
    signal,
    log,
    emit: (e) => {
      if (e.type === 'skipped-file') skipped++;
    },
  });
  if (skipped) notes.push(`${skipped} files are not usable images and are left out (as the inspection reports).`);
  if (!tf.engine().backendName) await tf.setBackend('cpu');
  const [h, w] = spec.data.imageSize;
  const { model, head, notes: modelNotes } = await buildClassifier({ model: spec.model.model, widthMultiplier: spec.model.widthMultiplier }, [h, w, spec.data.channels], split.numClasses);
  try {
    model.setUserDefinedMetadata({ ...(model.getUserDefinedMetadata() ?? {}), classNames: split.classNames });
    await model.save(fileSaveHandler(join(spec.runDir, msg.initialModel)));
    return {
      classNames: split.classNames,
      train: split.train.map((f) => [f.path, f.label]),
      validation: split.validation.map((f) => [f.path, f.label]),
      head,
      params: model.countParams(),
      initialModel: join(msg.initialModel, 'model.json'),
      notes: [...notes, ...modelNotes],
    };
  } finally {
    model.dispose();
  }
}
