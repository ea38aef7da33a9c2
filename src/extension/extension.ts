/**
 * Entry point. Kept thin on purpose (as rust-analyzer's main.ts): everything lives in
 * {@link BatchAdvisor}, which owns every disposable the extension creates.
 */
import type * as vscode from 'vscode';
import { BatchAdvisor } from './context';

let instance: BatchAdvisor | undefined;

export function activate(context: vscode.ExtensionContext): void {
  instance = new BatchAdvisor(context);
  context.subscriptions.push(instance);
}

export function deactivate(): void {
  instance?.dispose();
  instance = undefined;
}
