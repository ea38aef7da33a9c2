/**
 * `train --engine torchrun --export slurm | skypilot`: instead of launching, the run folder (train.py,
 * tfjs_torch.py, run.json, the initial model) gets a Slurm batch script (`srun torchrun …`, one task
 * per node) or a SkyPilot task YAML (num_nodes, accelerators, `run: torchrun …`) that trains the
 * same plan. The scripts name the run folder and the dataset by their absolute paths: on Slurm they
 * must be on a file system every node sees under the same path; the SkyPilot task mounts them there.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeBatch, type TrainingPlan } from '../shared/plan';
import type { TorchrunLaunch } from '../shared/run-spec';
import { RUN_JSON } from './run-json';
import { TRAIN_SCRIPT } from './template-files';

export const EXPORTS = ['slurm', 'skypilot'] as const;
export type ExportKind = (typeof EXPORTS)[number];
export const EXPORT_FILES: Record<ExportKind, string> = { slurm: 'torchrun.sbatch', skypilot: 'torchrun.sky.yaml' };
/** The rendezvous port on the first node. */
export const RDZV_PORT = 29500;

export interface ExportInput {
  name: string;
  runDir: string;
  dataset: string;
  launch: TorchrunLaunch;
  plan: TrainingPlan;
}

/** The plan's numbers, as comment lines. */
function planComments(e: ExportInput): string[] {
  const p = e.plan;
  return [
    `Batch Advisor run "${e.name}": torchrun (DistributedDataParallel), ${e.launch.nnodes} node(s) × ${e.launch.nprocPerNode} process(es) per node`,
    `plan: batch ${describeBatch(p)}; per-device micro-batch ${p.microBatchSize}, accumulation ${p.accumulationSteps}, global batch ${p.effectiveBatchSize}`,
    `learning rate ${p.learningRate.value} (for the global batch), warmup ${p.warmup.steps} steps, ${p.epochs} epochs × ${p.stepsPerEpoch} steps`,
    `everything train.py runs is in ${join(e.runDir, RUN_JSON)}; rank 0 writes metrics.jsonl and model/ in the run folder`,
  ];
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function slurmScript(e: ExportInput): string {
  const { launch } = e;
  return [
    '#!/bin/bash',
    ...planComments(e).map((l) => `# ${l}`),
    `#SBATCH --job-name=${e.name.replace(/[^A-Za-z0-9._-]/g, '-')}`,
    `#SBATCH --nodes=${launch.nnodes}`,
    '#SBATCH --ntasks-per-node=1',
    `#SBATCH --gpus-per-node=${launch.nprocPerNode}`,
    `#SBATCH --output=${join(e.runDir, 'slurm-%j.out')}`,
    'set -euo pipefail',
    'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
    `srun torchrun --nnodes ${launch.nnodes} --nproc_per_node ${launch.nprocPerNode} --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$head_node:${RDZV_PORT}" \\`,
    `  ${q(join(e.runDir, TRAIN_SCRIPT))} ${q(join(e.runDir, RUN_JSON))}`,
    '',
  ].join('\n');
}

/** A YAML double-quoted string. */
const y = (s: string): string => JSON.stringify(s);

export function skypilotTask(e: ExportInput, accelerator = 'A100'): string {
  const { launch } = e;
  return [
    ...planComments(e).map((l) => `# ${l}`),
    `# accelerators: ${accelerator} is a placeholder; name the GPU you rent (e.g. H100, L4).`,
    `name: ${y(e.name)}`,
    `num_nodes: ${launch.nnodes}`,
    'resources:',
    `  accelerators: ${y(`${accelerator}:${launch.nprocPerNode}`)}`,
    'file_mounts:',
    `  ${y(e.runDir)}: ${y(e.runDir)}`,
    `  ${y(e.dataset)}: ${y(e.dataset)}`,
    'setup: |',
    '  python3 -c "import torch, PIL, numpy" || pip install torch pillow numpy',
    'run: |',
    '  MASTER_ADDR=$(echo "$SKYPILOT_NODE_IPS" | head -n1)',
    `  torchrun --nnodes ${launch.nnodes} --nproc_per_node ${launch.nprocPerNode} --node_rank "$SKYPILOT_NODE_RANK" --master_addr "$MASTER_ADDR" --master_port ${RDZV_PORT} \\`,
    `    ${q(join(e.runDir, TRAIN_SCRIPT))} ${q(join(e.runDir, RUN_JSON))}`,
    '',
  ].join('\n');
}

/** Writes the export into the run folder; returns its path. */
export function writeExport(kind: ExportKind, e: ExportInput): string {
  const path = join(e.runDir, EXPORT_FILES[kind]);
  writeFileSync(path, kind === 'slurm' ? slurmScript(e) : skypilotTask(e), { mode: 0o755 });
  return path;
}
