/**
 * The one object that owns the extension's state and disposables: the log channel, the Suggest
 * controller (command + panel + serializer), the CodeLens provider and the training command.
 */
import * as vscode from 'vscode';
import { COMMANDS } from '../core/shared/constants';
import { SUGGEST_VIEW_TYPE } from '../core/shared/webview-protocol';
import { TrainConfigCodeLensProvider, TRAIN_CONFIG_SELECTOR } from './codelens';
import { SuggestController } from './suggest/controller';
import { TrainCommand } from './train/command';

export { COMMANDS } from '../core/shared/constants';

export class BatchAdvisor implements vscode.Disposable {
  readonly log: vscode.LogOutputChannel;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(readonly extension: vscode.ExtensionContext) {
    this.log = this.own(vscode.window.createOutputChannel('Batch Advisor', { log: true }));
    this.log.info(`Batch Advisor ${String(extension.extension.packageJSON.version)} activated (workspace ${vscode.workspace.isTrusted ? 'trusted' : 'in Restricted Mode'})`);

    const suggest = this.own(new SuggestController(this));
    const train = this.own(new TrainCommand(this));
    const lenses = this.own(new TrainConfigCodeLensProvider());

    this.own(vscode.window.registerWebviewPanelSerializer(SUGGEST_VIEW_TYPE, suggest.serializer));
    this.own(vscode.languages.registerCodeLensProvider(TRAIN_CONFIG_SELECTOR, lenses));
    this.own(vscode.commands.registerCommand(COMMANDS.suggest, (arg?: unknown) => suggest.run(arg)));
    this.own(vscode.commands.registerCommand(COMMANDS.train, (arg?: unknown) => train.run(arg)));
    this.own(vscode.commands.registerCommand(COMMANDS.showLog, () => this.log.show(true)));
    this.own(
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.log.info('Workspace trusted: training enabled.');
        lenses.refresh();
      }),
    );
  }

  get extensionUri(): vscode.Uri {
    return this.extension.extensionUri;
  }

  /** Registers a disposable with this context and returns it. */
  own<T extends vscode.Disposable>(d: T): T {
    this.disposables.push(d);
    return d;
  }

  dispose(): void {
    // Reverse order: later things may depend on earlier ones (everything logs to the channel).
    for (const d of this.disposables.splice(0).reverse()) {
      try {
        d.dispose();
      } catch (e) {
        console.error('Batch Advisor: dispose failed', e);
      }
    }
  }
}
