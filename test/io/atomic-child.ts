/**
 * Child process for test/io/atomic.test.ts: rewrites a target forever (until killed) with self-checking
 * contents. Usage: atomic-child.ts <file|dir> <target> <bytes>. Prints "ready" after the first write.
 * Content of version v: every byte equals v % 251, and the first 4 bytes hold v (little-endian).
 */
import { writeDirAtomic, writeFileAtomic } from '../../src/io/atomic.js';

export function payload(version: number, bytes: number): Uint8Array {
  const b = new Uint8Array(bytes).fill(version % 251);
  new DataView(b.buffer).setUint32(0, version, true);
  return b;
}

if (process.argv[1]?.endsWith('atomic-child.ts')) {
  const [mode, target, size] = process.argv.slice(2);
  const bytes = Number(size);
  for (let v = 1; ; v++) {
    if (mode === 'file') writeFileAtomic(target, payload(v, bytes));
    else writeDirAtomic(target, { 'model.bin': payload(v, bytes), 'sub/state.json': JSON.stringify({ version: v }) });
    if (v === 1) process.stdout.write('ready\n');
  }
}
