/**
 * The one object that owns the extension's state and disposables: the log channel, the Suggest
 * controller (command + panel + serializer), the CodeLens provider and the training command.
 *
 * Activation only registers: no I/O, and the commands' modules (the dataset scanner, the engine,
 * the trainer client) are imported when a command first runs (`import()`; esbuild keeps them in
 * dist/extension.js but runs them only then). Issue #12.
 */
import * as vscode from 'vscode';
import { COMMANDS } from '../core/shared/constants';
import { SUGGEST_VIEW_TYPE } from '../core/shared/webview-protocol';
import { TrainConfigCodeLensProvider, TRAIN_CONFIG_SELECTOR } from './codelens';
import { ConfigEditing } from './config';
import { Training } from './train';
import type { FeatureHost, TestHooks } from './host';

export { COMMANDS } from '../core/shared/constants';

export class BatchAdvisor implements vscode.Disposable, FeatureHost {
  readonly log: vscode.LogOutputChannel;
  private readonly disposables: vscode.Disposable[] = [];

  /** The Suggest controller, loaded on first use (command or a panel restored after a reload). */
  private readonly suggest = this.onFirstUse('Suggest', async () => (this.suggestLoaded = new (await import('./suggest/controller.js')).SuggestController(this)));
  private suggestLoaded: { onSettingsChanged(e: vscode.ConfigurationChangeEvent): void } | undefined;

  constructor(
    readonly extension: vscode.ExtensionContext,
    readonly testHooks: TestHooks = {},
  ) {
    this.log = this.own(vscode.window.createOutputChannel('Batch Advisor', { log: true }));
    this.log.info(`Batch Advisor ${String(extension.extension.packageJSON.version)} activated (workspace ${vscode.workspace.isTrusted ? 'trusted' : 'in Restricted Mode'})`);

    const lenses = this.own(new TrainConfigCodeLensProvider());
    const serializer: vscode.WebviewPanelSerializer<unknown> = {
      deserializeWebviewPanel: async (panel, state) => (await this.suggest()).serializer.deserializeWebviewPanel(panel, state),
    };
    this.own(vscode.window.registerWebviewPanelSerializer(SUGGEST_VIEW_TYPE, serializer));
    this.own(vscode.languages.registerCodeLensProvider(TRAIN_CONFIG_SELECTOR, lenses));
    this.own(vscode.commands.registerCommand(COMMANDS.suggest, async (arg?: unknown) => (await this.suggest()).run(arg)));
    this.own(new Training(this)); // batchAdvisor.train (loaded on first use), the training panels, runs view, status bar
    this.own(new ConfigEditing(this)); // diagnostics, apply lens command, New Training Config
    this.own(vscode.commands.registerCommand(COMMANDS.showLog, () => this.log.show(true)));
    // Settings react to changes: a shown suggestion whose plan they change is made again.
    this.own(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration('batchAdvisor')) return;
        this.log.info('Settings changed');
        this.suggestLoaded?.onSettingsChanged(e);
      }),
    );
    this.own(
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.log.info('Workspace trusted: training enabled.');
        lenses.refresh();
      }),
    );
  }

  /** `load()` once, on the first call; the result is owned (disposed with the extension) and logged with its load time. */
  private onFirstUse<T extends vscode.Disposable>(name: string, load: () => Promise<T>): () => Promise<T> {
    let loaded: Promise<T> | undefined;
    return () => {
      loaded ??= (async () => {
        const started = performance.now();
        const value = this.own(await load());
        this.log.info(`${name}: loaded on first use in ${(performance.now() - started).toFixed(1)} ms`);
        return value;
      })();
      return loaded;
    };
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
