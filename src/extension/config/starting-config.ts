/** The config "New Training Config" writes (pure: unit-tested). */
import { basename, relative } from 'node:path';
import { sanitizeRunName } from '../../core/run-folder/runs';

/** A starting config for `datasetFolder`, written in `configDir`: dataset relative, batch "auto". */
export function startingConfig(configDir: string, datasetFolder: string): Record<string, unknown> {
  const rel = relative(configDir, datasetFolder).split('\\').join('/') || '.';
  return {
    name: sanitizeRunName(basename(datasetFolder)),
    dataset: rel,
    imageSize: [64, 64],
    channels: 3,
    validationSplit: 0.2,
    model: 'tutorial-cnn',
    optimizer: 'adam',
    batchSize: 'auto',
    epochs: 10,
  };
}

