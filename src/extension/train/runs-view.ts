/**
 * The "Batch Advisor Runs" view (Explorer): every run under each workspace folder's
 * .batch-advisor/runs, newest first, with its status and final metrics. Click opens a run's panel
 * (from metrics.jsonl alone); select two or more and "Compare Runs" draws them on the same charts
 * with their hyper-parameters and metrics tabulated; "Rename Run…" (a name in the run folder's
 * meta.json), "Export Metrics as CSV" act on one run, "Delete Run" on the selection.
 */
import * as vscode from 'vscode';
import { deleteRun, listRuns, type RunSummary } from '../../core/run-folder/runs';
import { renameRun, runNameProblem } from '../../core/run-folder/run-meta';
import { rowDescription, rowTooltip } from './run-row';
import { classifyError } from '../../core/shared/errors';
import type { FeatureHost } from '../host';
import type { LiveRunListener } from './command';
import type { RunPanels } from './panels';
import { COMMANDS } from '../../core/shared/constants';

export const RUNS_VIEW_ID = 'batchAdvisor.runs';

/** A run in the view (a plain element; its TreeItem is made in getTreeItem). */
export class RunItem {
  constructor(
    readonly run: RunSummary,
    readonly workspaceRoot: string,
    readonly live: boolean,
  ) {}

  treeItem(): vscode.TreeItem {
    const { run, live } = this;
    const item = new vscode.TreeItem(run.name, vscode.TreeItemCollapsibleState.None);
    item.id = run.dir;
    item.description = rowDescription(run, live);
    item.tooltip = rowTooltip(run, live);
    item.iconPath = new vscode.ThemeIcon(
      live ? 'sync~spin' : run.status === 'completed' ? 'pass' : run.status === 'failed' ? 'error' : run.status === 'stopped' ? 'debug-stop' : 'warning',
    );
    item.contextValue = 'batchAdvisorRun';
    item.command = { command: COMMANDS.openRun, title: 'Open Run', arguments: [this] };
    return item;
  }
}

export class RunsView implements vscode.TreeDataProvider<RunItem>, vscode.Disposable, LiveRunListener {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly tree: vscode.TreeView<RunItem>;
  private liveDir: string | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ctx: FeatureHost,
    private readonly panels: RunPanels,
  ) {
    this.tree = vscode.window.createTreeView(RUNS_VIEW_ID, { treeDataProvider: this, canSelectMany: true, showCollapseAll: false });
    const watcher = vscode.workspace.createFileSystemWatcher('**/.batch-advisor/runs/*/{config.json,metrics.jsonl}');
    this.disposables.push(
      this.tree,
      watcher,
      watcher.onDidCreate(() => this.refreshSoon()),
      watcher.onDidDelete(() => this.refreshSoon()),
      vscode.commands.registerCommand(COMMANDS.openRun, (item?: RunItem) => this.withItems(item, undefined, (items) => this.panels.openRuns(items.slice(0, 1).map((i) => i.run.dir)))),
      vscode.commands.registerCommand(COMMANDS.compareRuns, (item?: RunItem, selected?: RunItem[]) => this.withItems(item, selected, (items) => this.compare(items))),
      vscode.commands.registerCommand(COMMANDS.exportRunCsv, (item?: RunItem) => this.withItems(item, undefined, (items) => this.exportCsv(items[0]!))),
      vscode.commands.registerCommand(COMMANDS.renameRun, (item?: RunItem) => this.withItems(item, undefined, (items) => this.rename(items[0]!))),
      vscode.commands.registerCommand(COMMANDS.deleteRun, (item?: RunItem, selected?: RunItem[]) => this.withItems(item, selected, (items) => this.delete(items))),
      vscode.commands.registerCommand(COMMANDS.refreshRuns, () => this.changed.fire()),
    );
  }

  onLiveRun(run: Parameters<LiveRunListener['onLiveRun']>[0]): void {
    const dir = run?.runDir;
    if (dir !== this.liveDir) {
      this.liveDir = dir;
      this.refreshSoon();
    }
  }

  private refreshSoon(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.changed.fire(), 300);
  }

  getTreeItem(item: RunItem): vscode.TreeItem {
    return item.treeItem();
  }

  getChildren(parent?: RunItem): RunItem[] {
    if (parent) return [];
    const out: RunItem[] = [];
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      if (folder.uri.scheme !== 'file') continue;
      try {
        for (const run of listRuns(folder.uri.fsPath)) out.push(new RunItem(run, folder.uri.fsPath, run.dir === this.liveDir));
      } catch (e) {
        this.ctx.log.warn(`Runs: cannot list runs of ${folder.uri.fsPath}: ${classifyError(e).message}`);
      }
    }
    return out;
  }

  /** The clicked item plus the selection (commands from the palette use the selection). */
  private withItems(item: RunItem | undefined, selected: RunItem[] | undefined, act: (items: RunItem[]) => unknown): void {
    let items = selected?.length ? selected : item ? [item] : [...this.tree.selection];
    if (item && !items.includes(item)) items = [item, ...items];
    if (!items.length) {
      void vscode.window.showInformationMessage('Batch Advisor: select a run in the Batch Advisor Runs view first.');
      return;
    }
    void act(items);
  }

  private compare(items: RunItem[]): void {
    if (items.length < 2) {
      void vscode.window.showInformationMessage('Batch Advisor: select two or more runs (Ctrl/Cmd+click) to compare them.');
      return;
    }
    this.panels.openRuns(items.map((i) => i.run.dir));
  }

  private async exportCsv(item: RunItem): Promise<void> {
    try {
      const out = this.panels.exportCsv(item.run.dir);
      await vscode.window.showTextDocument(vscode.Uri.file(out), { preview: false });
    } catch (e) {
      void vscode.window.showErrorMessage(`Batch Advisor: could not export ${item.run.id}: ${classifyError(e).message}`);
    }
  }

  private async rename(item: RunItem): Promise<void> {
    const name = await vscode.window.showInputBox({
      title: `Rename run ${item.run.id}`,
      prompt: 'The name the runs view and the panels show (the run folder keeps its name).',
      value: item.run.name,
      validateInput: (v) => runNameProblem(v),
    });
    if (name === undefined) return;
    try {
      const stored = renameRun(item.run.dir, name);
      this.ctx.log.info(`Runs: renamed ${item.run.id} to "${stored}"`);
      this.panels.rename(item.run.id, stored);
    } catch (e) {
      void vscode.window.showErrorMessage(`Batch Advisor: could not rename ${item.run.id}: ${classifyError(e).message}`);
    }
    this.changed.fire();
  }

  private async delete(items: RunItem[]): Promise<void> {
    if (items.some((i) => i.run.dir === this.liveDir)) {
      void vscode.window.showWarningMessage('Batch Advisor: stop the run that is training before deleting it.');
      return;
    }
    const what = items.length === 1 ? `run "${items[0]!.run.name}" (${items[0]!.run.id})` : `${items.length} runs`;
    const ok = await vscode.window.showWarningMessage(`Delete ${what}? Its metrics, logs and saved model are removed from disk.`, { modal: true }, 'Delete');
    if (ok !== 'Delete') return;
    for (const i of items) {
      try {
        deleteRun(i.workspaceRoot, i.run.dir);
        this.panels.closeRuns([i.run.id]);
        this.ctx.log.info(`Runs: deleted ${i.run.dir}`);
      } catch (e) {
        void vscode.window.showErrorMessage(`Batch Advisor: could not delete ${i.run.id}: ${classifyError(e).message}`);
      }
    }
    this.changed.fire();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const d of this.disposables.splice(0)) d.dispose();
    this.changed.dispose();
  }
}
