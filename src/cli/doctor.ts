/** `lmdistill doctor`: what this installation runs with — backend, CPU features, threads, optional parts. */
import os from 'node:os';
import type { Command } from 'commander';
import { nativeInfo } from '../backend/native.js';
import { getBackend } from '../tensor/tensor.js';
import { loadOnnxRuntime } from '../teachers/onnx.js';
import { VERSION } from './version.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('print the backend in use, CPU features, thread count and optional components')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const n = nativeInfo();
      let onnx = 'not installed (optional: npm install onnxruntime-node)';
      try {
        await loadOnnxRuntime();
        onnx = 'available';
      } catch { /* optional dependency */ }
      const info = {
        version: VERSION,
        node: process.version,
        backend: getBackend().name,
        native: n.available ? { isa: n.isa, supported: n.supportedIsas, threads: n.threads, spinUs: n.spinUs, mallocRetain: n.mallocRetain } : { unavailable: n.reason },
        cpu: os.cpus()[0]?.model ?? 'unknown',
        cores: os.cpus().length,
        env: { LMDISTILL_BACKEND: process.env.LMDISTILL_BACKEND ?? '(auto)', LMDISTILL_THREADS: process.env.LMDISTILL_THREADS ?? '(all cores)', LMDISTILL_MALLOC: process.env.LMDISTILL_MALLOC ?? '(retain)', LMDISTILL_SPIN_US: process.env.LMDISTILL_SPIN_US ?? '(300)' },
        onnxruntime: onnx,
      };
      if (o.json) { process.stdout.write(JSON.stringify(info) + '\n'); return; }
      const lines = [
        `lmdistill ${info.version} on Node ${info.node}`,
        `backend:   ${info.backend}${n.available ? ` (native ${n.isa}, ${n.threads} threads spinning ${n.spinUs} µs when idle; CPU supports ${n.supportedIsas.join(', ')})` : ` (native unavailable: ${n.reason})`}`,
        `memory:    ${n.mallocRetain ? 'freed blocks kept for reuse by malloc (LMDISTILL_MALLOC=system to return them to the OS)' : 'C library defaults'}`,
        `cpu:       ${info.cpu}, ${info.cores} cores`,
        `env:       LMDISTILL_BACKEND=${info.env.LMDISTILL_BACKEND} LMDISTILL_THREADS=${info.env.LMDISTILL_THREADS} LMDISTILL_MALLOC=${info.env.LMDISTILL_MALLOC} LMDISTILL_SPIN_US=${info.env.LMDISTILL_SPIN_US}`,
        `onnx:      ${onnx}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
