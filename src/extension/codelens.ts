/**
 * CodeLenses on `*.train.json` files: "▶ Train with this config" and "Suggest batch size" on the
 * first line, and — after a suggestion for this config — "Suggested: N — apply" on the batchSize
 * line (an undoable edit). Narrow selector, lenses resolved lazily, refreshed through
 * onDidChangeCodeLenses (workspace trust granted, a new suggestion).
 */
import * as vscode from 'vscode';
import { COMMANDS, CONFIG_SUFFIX } from '../core/shared/constants';
import { fieldNode } from './config/checks';
import { planFieldsMatch } from './config/plan-edit';
import { applyTitle, onDidChangeSuggestion, suggestionFor } from './config/suggestions';

export const TRAIN_CONFIG_SELECTOR: vscode.DocumentSelector = { pattern: `**/*${CONFIG_SUFFIX}` };

type LensKind = 'train' | 'suggest' | 'apply';

class ConfigLens extends vscode.CodeLens {
  constructor(
    range: vscode.Range,
    readonly kind: LensKind,
    readonly uri: vscode.Uri,
  ) {
    super(range);
  }
}

export class TrainConfigCodeLensProvider implements vscode.CodeLensProvider<ConfigLens>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly onSuggestion = onDidChangeSuggestion(() => this.changed.fire());

  refresh(): void {
    this.changed.fire();
  }

  provideCodeLenses(document: vscode.TextDocument): ConfigLens[] {
    // On the first line that holds a JSON token (the opening brace, usually line 0).
    let line = 0;
    while (line < document.lineCount - 1 && document.lineAt(line).isEmptyOrWhitespace) line++;
    const range = new vscode.Range(line, 0, line, 0);
    const lenses = [new ConfigLens(range, 'train', document.uri), new ConfigLens(range, 'suggest', document.uri)];
    const apply = this.applyLens(document);
    if (apply) lenses.push(apply);
    return lenses;
  }

  /** "Suggested: 8 × 4, lr 0.0014 — apply" on the batchSize line, when the file's fields differ from the last suggestion's plan. */
  private applyLens(document: vscode.TextDocument): ConfigLens | undefined {
    const s = document.uri.scheme === 'file' ? suggestionFor(document.uri.fsPath) : undefined;
    if (!s) return undefined;
    const text = document.getText();
    const node = fieldNode(text, 'batchSize');
    if (!node || planFieldsMatch(text, s.fields)) return undefined;
    const pos = document.positionAt(node.offset);
    const lens = new ConfigLens(new vscode.Range(pos.line, 0, pos.line, 0), 'apply', document.uri);
    const f = s.fields;
    lens.command = {
      title: `$(lightbulb) ${applyTitle(f)}`,
      command: COMMANDS.applySuggestion,
      arguments: [document.uri, f],
      tooltip: `Set "batchSize" ${f.batchSize}, "accumulationSteps" ${f.accumulationSteps}, "learningRate" ${f.learningRate} and "warmupSteps" ${f.warmupSteps}, as the last suggestion for this config planned — one edit, Undo restores it`,
    };
    return lens;
  }

  resolveCodeLens(lens: ConfigLens): ConfigLens {
    if (lens.kind === 'apply') return lens;
    if (lens.kind === 'train') {
      lens.command = vscode.workspace.isTrusted
        ? { title: '▶ Train with this config', command: COMMANDS.train, arguments: [lens.uri], tooltip: 'Start a training run with this config' }
        : {
            title: '$(shield) Training is disabled in Restricted Mode',
            command: COMMANDS.train,
            arguments: [lens.uri],
            tooltip: 'Training runs code from this workspace. Trust the workspace to enable it.',
          };
    } else {
      lens.command = {
        title: '$(lightbulb) Suggest batch size',
        command: COMMANDS.suggest,
        arguments: [lens.uri],
        tooltip: 'Scan the dataset, model and device and recommend a batch size',
      };
    }
    return lens;
  }

  dispose(): void {
    this.onSuggestion.dispose();
    this.changed.dispose();
  }
}
