/**
 * Editing help for `*.train.json` beyond the schema (whose descriptions give completion and hover
 * through `jsonValidation`): diagnostics on the exact value (checks.ts), "Suggested: N — apply"
 * (the lens lives in ../codelens.ts; the edit is here, undoable) and "New Training Config".
 */
import * as vscode from 'vscode';
import type { FeatureHost } from '../host';
import { isConfigPath } from '../suggest/target';
import { checkConfig, fieldNode } from './checks';
import { newTrainingConfig } from './new-config';
import { withPlanFields } from './plan-edit';
import { onDidChangeSuggestion, suggestionFor, type PlanFields } from './suggestions';
import { COMMANDS } from '../../core/shared/constants';


function isPlanFields(v: unknown): v is PlanFields {
  const o = v as Partial<PlanFields> | null;
  const int = (x: unknown, min: number): boolean => Number.isInteger(x) && (x as number) >= min;
  return !!o && typeof o === 'object' && int(o.batchSize, 1) && int(o.accumulationSteps, 1) && int(o.warmupSteps, 0) && typeof o.learningRate === 'number' && o.learningRate > 0;
}

export class ConfigEditing implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('batch-advisor');
  private readonly disposables: vscode.Disposable[] = [this.diagnostics];
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly ctx: FeatureHost) {
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument((d) => this.checkSoon(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.checkSoon(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => this.diagnostics.delete(d.uri)),
      onDidChangeSuggestion((path) => {
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === path);
        if (doc) this.checkSoon(doc);
      }),
      vscode.commands.registerCommand(COMMANDS.applySuggestion, (uri: unknown, n: unknown) => this.apply(uri, n)),
      vscode.commands.registerCommand(COMMANDS.newConfig, (arg?: unknown) => newTrainingConfig(ctx, arg)),
    );
    for (const d of vscode.workspace.textDocuments) this.checkSoon(d);
  }

  private checkSoon(doc: vscode.TextDocument): void {
    if (doc.uri.scheme !== 'file' || !isConfigPath(doc.uri.fsPath)) return;
    const key = doc.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.check(doc);
      }, 250),
    );
  }

  private check(doc: vscode.TextDocument): void {
    if (doc.isClosed) return;
    try {
      const problems = checkConfig(doc.getText(), doc.uri.fsPath, suggestionFor(doc.uri.fsPath)?.batchWarnings);
      this.diagnostics.set(
        doc.uri,
        problems.map((p) => {
          const range = new vscode.Range(doc.positionAt(p.offset), doc.positionAt(p.offset + p.length));
          const d = new vscode.Diagnostic(range, p.message, p.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning);
          d.source = 'Batch Advisor';
          return d;
        }),
      );
    } catch (e) {
      this.ctx.log.warn(`Config checks failed for ${doc.uri.fsPath}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Writes the plan's fields (batch, accumulation, learning rate, warmup): one WorkspaceEdit, undone with one Undo. */
  private async apply(uri: unknown, f: unknown): Promise<void> {
    if (!(uri instanceof vscode.Uri) || !isPlanFields(f)) return;
    const doc = await vscode.workspace.openTextDocument(uri);
    const text = doc.getText();
    if (!fieldNode(text, 'batchSize')) {
      void vscode.window.showWarningMessage(`Batch Advisor: ${vscode.workspace.asRelativePath(uri)} has no "batchSize" field to change.`);
      return;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, new vscode.Range(doc.positionAt(0), doc.positionAt(text.length)), withPlanFields(text, f));
    await vscode.workspace.applyEdit(edit);
    this.ctx.log.info(`Applied the suggested plan to ${uri.fsPath}: batchSize ${f.batchSize}, accumulationSteps ${f.accumulationSteps}, learningRate ${f.learningRate}, warmupSteps ${f.warmupSteps}`);
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
