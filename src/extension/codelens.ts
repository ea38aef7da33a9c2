/**
 * CodeLenses on `*.train.json` files: "▶ Train with this config" and "Suggest batch size".
 * Narrow selector, lenses resolved lazily, refreshed through onDidChangeCodeLenses (workspace
 * trust granted, config saved).
 */
import * as vscode from 'vscode';
import { COMMANDS } from '../core/shared/constants';

export const TRAIN_CONFIG_SELECTOR: vscode.DocumentSelector = { pattern: '**/*.train.json' };

type LensKind = 'train' | 'suggest';

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

  refresh(): void {
    this.changed.fire();
  }

  provideCodeLenses(document: vscode.TextDocument): ConfigLens[] {
    // On the first line that holds a JSON token (the opening brace, usually line 0).
    let line = 0;
    while (line < document.lineCount - 1 && document.lineAt(line).isEmptyOrWhitespace) line++;
    const range = new vscode.Range(line, 0, line, 0);
    return [new ConfigLens(range, 'train', document.uri), new ConfigLens(range, 'suggest', document.uri)];
  }

  resolveCodeLens(lens: ConfigLens): ConfigLens {
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
    this.changed.dispose();
  }
}
