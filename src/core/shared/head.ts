/**
 * The classifier head and its loss, decided as Keras defines them — the one place that decides.
 * The trainer (run and probe), the model description and the memory model all take the Head made
 * here from the model's last layer and the file's training-config loss. Browser-safe: the plan
 * shown in the webviews carries its description.
 *
 *  - a softmax last layer (Dense/Conv with activation softmax, or an Activation('softmax') /
 *    Softmax layer): sparse categorical cross-entropy, computed from the logits before the softmax
 *    (the gradients of Keras's from_logits=False loss, numerically stable);
 *  - one sigmoid unit on two classes: binary cross-entropy on labels 0/1 (Keras's
 *    label_mode='binary': the class index in alphabetical folder order), from the logit;
 *  - one linear unit on two classes: binary cross-entropy from logits;
 *  - a linear last layer of N units: softmax cross-entropy from logits (the zoo models).
 * Accuracy: argmax for N units; logit > 0 (probability > 0.5) for one unit.
 */

export interface Head {
  /** The activation the model itself ends with; kept in the saved model (inference gives probabilities). */
  activation: 'softmax' | 'sigmoid' | 'linear';
  /** 'categorical': softmax cross-entropy over `units` = classes; 'binary': sigmoid cross-entropy over one unit. */
  loss: 'categorical' | 'binary';
  units: number;
  /**
   * Where the trainer takes the logits: the model's output ('output'), the last layer's output
   * before its own activation ('in-layer'), or the input of a final Activation/Softmax layer
   * ('activation-layer'). The memory model follows: the activation is not computed in training.
   */
  logits: 'output' | 'in-layer' | 'activation-layer';
  /** Name of the model's last layer (the one whose activation is skipped in training). */
  layerName: string;
  /** The loss written in the model file's training config, when it has one (as written). */
  fileLoss?: string;
  /** One line: "sparse categorical cross-entropy on the softmax output (from its logits)". */
  description: string;
}

export interface LastLayer {
  name: string;
  /** Keras/tfjs class name: Dense, Conv2D, Activation, Softmax, … */
  className: string;
  /** Its activation ("softmax", "linear", …); for Activation layers the one they apply; Softmax layers: "softmax". */
  activation?: string;
  /** Values per image it outputs (the last dimension), and its rank without the batch. */
  units: number;
  rank: number;
}

/** A loss from a training config, normalized. */
interface FileLoss {
  kind: 'categorical' | 'binary' | 'other';
  /** As written (a string, or the class_name of a loss object). */
  name: string;
  /** from_logits when the loss object sets it. */
  fromLogits?: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The loss of a Keras/tfjs training config: a string ("sparse_categorical_crossentropy",
 * "sparseCategoricalCrossentropy"), a loss object ({class_name, config: {from_logits}}), or a
 * one-output list/map of those. undefined when there is none.
 */
export function parseFileLoss(loss: unknown): FileLoss | undefined {
  if (loss === undefined || loss === null) return undefined;
  if (Array.isArray(loss)) return loss.length === 1 ? parseFileLoss(loss[0]) : { kind: 'other', name: JSON.stringify(loss) };
  let name: string;
  let fromLogits: boolean | undefined;
  if (typeof loss === 'string') name = loss;
  else if (isObject(loss) && typeof loss.class_name === 'string') {
    name = loss.class_name;
    const c = isObject(loss.config) ? loss.config : {};
    const f = c.from_logits ?? c.fromLogits;
    if (typeof f === 'boolean') fromLogits = f;
  } else if (isObject(loss) && Object.keys(loss).length === 1) return parseFileLoss(Object.values(loss)[0]);
  else return { kind: 'other', name: JSON.stringify(loss) };
  const key = name.toLowerCase().replace(/[_\s-]/g, '');
  const kind = key === 'sparsecategoricalcrossentropy' || key === 'categoricalcrossentropy' ? 'categorical' : key === 'binarycrossentropy' ? 'binary' : 'other';
  return { kind, name, ...(fromLogits !== undefined ? { fromLogits } : {}) };
}

const CLASSIFIER_ACTIVATIONS = new Set(['softmax', 'sigmoid', 'linear']);

function describe(loss: Head['loss'], activation: Head['activation']): string {
  const what = loss === 'binary' ? 'binary cross-entropy' : 'sparse categorical cross-entropy';
  if (activation === 'linear') return `${what} from logits`;
  return `${what} on the ${activation} output (from its ${loss === 'binary' ? 'logit' : 'logits'})`;
}

export type HeadDecision = { head: Head; warnings: string[] } | { error: string };

/**
 * The head and loss for a model whose last layer is `last`, trained on `numClasses` classes, with
 * the file's training-config loss `fileLoss` (raw, from model.json). `source` names the model in
 * messages (a file path or a zoo name). Errors are one line, for a BadInputError.
 */
export function decideHead(last: LastLayer, numClasses: number, fileLossRaw: unknown, source: string): HeadDecision {
  const act = last.className === 'Softmax' ? 'softmax' : (last.activation ?? 'linear');
  const fail = (why: string): HeadDecision => ({ error: `${source}: ${why}` });
  const twoClassHint = numClasses === 2 ? ` (or 1 unit with activation 'sigmoid')` : '';
  if (last.rank !== 1 || (last.units !== numClasses && !(numClasses === 2 && last.units === 1))) {
    return fail(`the model outputs [${last.units}] per image${last.rank !== 1 ? ` (rank ${last.rank})` : ''} but the dataset has ${numClasses} classes; its last layer must have ${numClasses} units${twoClassHint}`);
  }
  if (!CLASSIFIER_ACTIVATIONS.has(act)) {
    return fail(`its last layer "${last.name}" ends in activation '${act}', which is not a classifier head: end the model with softmax, with no activation (logits), or with one sigmoid unit for two classes`);
  }
  const units = last.units;
  if (act === 'sigmoid' && units > 1) {
    return fail(`its last layer "${last.name}" applies sigmoid to ${units} units (multi-label); a classifier of ${numClasses} classes needs softmax${numClasses === 2 ? ", or Dense(1, activation='sigmoid')" : ''}`);
  }
  if (act === 'softmax' && units === 1) {
    return fail(`its last layer "${last.name}" applies softmax to 1 unit, which always outputs 1: use Dense(1, activation='sigmoid') for two classes`);
  }
  const loss: Head['loss'] = units === 1 ? 'binary' : 'categorical';
  const activation = act as Head['activation'];
  const logits: Head['logits'] = activation === 'linear' ? 'output' : last.className === 'Activation' || last.className === 'Softmax' ? 'activation-layer' : 'in-layer';
  const warnings: string[] = [];
  const file = parseFileLoss(fileLossRaw);
  if (file) {
    const shape = `${units} unit${units === 1 ? '' : 's'}${activation === 'linear' ? '' : ` with ${activation}`}`;
    if (file.kind === 'binary' && loss !== 'binary') {
      return fail(`the file's loss ${file.name} needs one output unit but the last layer "${last.name}" has ${shape}: use sparse_categorical_crossentropy, or end the model in Dense(1, activation='sigmoid')`);
    }
    if (file.kind === 'categorical' && loss !== 'categorical') {
      return fail(`the file's loss ${file.name} over the last layer's 1 unit is always 0: use binary_crossentropy for a one-unit head, or end the model in Dense(2, activation='softmax')`);
    }
    if (file.kind !== 'other' && file.fromLogits === true && activation !== 'linear') {
      return fail(`the file's loss ${file.name} has from_logits=true but the last layer "${last.name}" already applies ${activation} (Keras would apply it twice): set from_logits=false, or remove the activation`);
    }
    if (file.kind !== 'other' && file.fromLogits === false && activation === 'linear') {
      warnings.push(`${source}: the file's loss ${file.name} has from_logits=false, but the last layer "${last.name}" outputs logits (no activation): trained with ${describe(loss, activation)}.`);
    }
    if (file.kind === 'other') warnings.push(`${source}: the file's loss ${file.name} is not a cross-entropy Batch Advisor trains with; it is not used: trained with ${describe(loss, activation)}.`);
  }
  const head: Head = { activation, loss, units, logits, layerName: last.name, description: describe(loss, activation), ...(file ? { fileLoss: file.name } : {}) };
  return { head, warnings };
}
