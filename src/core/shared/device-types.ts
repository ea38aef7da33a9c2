export interface DeviceInfo {
  kind: 'gpu' | 'cpu';
  name: string;
  memoryTotalBytes: number;
  memoryFreeBytes: number;
  /** Where the figures come from: "nvidia-smi", "os", or "override". */
  source: 'nvidia-smi' | 'os' | 'override';
}
