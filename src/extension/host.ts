/**
 * What a feature (suggest, train, config editing) needs from the extension: its log, its files, the
 * test seams, and a place to own what it creates. Features take a FeatureHost, not the whole
 * BatchAdvisor (context.ts), which imports every feature: so no feature imports back up.
 */
import type * as vscode from 'vscode';
import type { RunTest } from '../core/shared/run-spec';

/** Seams for the end-to-end tests, read once by the entry point (never inside the product code). */
export interface TestHooks {
  /** A pause (ms) at every yield of a dataset scan, so a test can cancel mid-scan. */
  scanYieldDelayMs?: number;
  /** Faults for the trainer (BATCH_ADVISOR_FAULT, _MEMORY_LIMIT): they travel in the RunSpec. */
  run?: RunTest;
}

export interface FeatureHost {
  readonly log: vscode.LogOutputChannel;
  readonly extensionUri: vscode.Uri;
  readonly testHooks: TestHooks;
  /** Registers a disposable with the extension and returns it. */
  own<T extends vscode.Disposable>(d: T): T;
}
