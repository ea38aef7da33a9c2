/**
 * The latest suggestion per config file, for the editor: the "Suggested: 8 × 4, lr 0.0014 — apply"
 * lens (which writes the plan's batch, accumulation, learning rate and warmup) and the "predicted
 * not to fit" diagnostic. The Suggest controller records each result for a config.
 */
import * as vscode from 'vscode';
import type { ConfigSuggestion } from './plan-edit';

export { applyTitle, configSuggestionFrom, type ConfigSuggestion, type PlanFields } from './plan-edit';

const byPath = new Map<string, ConfigSuggestion>();
const changed = new vscode.EventEmitter<string>();

/** Fires with the config path whose suggestion changed. */
export const onDidChangeSuggestion = changed.event;

export function recordSuggestion(configPath: string, s: ConfigSuggestion): void {
  byPath.set(configPath, s);
  changed.fire(configPath);
}

export function suggestionFor(configPath: string): ConfigSuggestion | undefined {
  return byPath.get(configPath);
}
