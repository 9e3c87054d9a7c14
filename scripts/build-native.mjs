#!/usr/bin/env node
// npm "install" hook: builds the native CPU backend (build/Release/lmdistill_native.node) with
// node-gyp against the running Node's own headers, offline. Whatever goes wrong (no compiler, no
// headers, LMDISTILL_SKIP_NATIVE=1), it prints one line saying the pure-TypeScript backend will be
// used and exits 0, so `npm ci` never fails because of the addon. The full compiler output is kept
// in build/native-build.log.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const logPath = join(root, 'build', 'native-build.log');

function fallback(reason) {
  console.log(`lmdistill: native backend not built (${reason}); the pure-TypeScript backend will be used.`);
  process.exit(0);
}

if (process.env.LMDISTILL_SKIP_NATIVE === '1') fallback('LMDISTILL_SKIP_NATIVE=1');

let nodeGyp;
try {
  nodeGyp = createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
} catch {
  fallback('node-gyp is not installed');
}

const args = [nodeGyp, 'rebuild', '--jobs', String(Math.max(1, Math.min(availableParallelism(), 4)))];
// Build against the headers shipped with this Node (e.g. /usr/include/node) so nothing is downloaded;
// an explicit npm_config_nodedir (npm passes .npmrc's nodedir this way) takes precedence.
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}

const res = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 15 * 60 * 1000, maxBuffer: 64 * 1024 * 1024 });
try {
  mkdirSync(dirname(logPath), { recursive: true });
  writeFileSync(logPath, `$ node ${args.join(' ')}\n${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}\n`);
} catch {
  // the log is a convenience; failing to write it must not fail the install
}
if (res.status !== 0 || !existsSync(join(root, 'build', 'Release', 'lmdistill_native.node'))) {
  const lines = `${res.stdout ?? ''}\n${res.stderr ?? ''}`.split('\n').map((l) => l.trim());
  const why = res.error?.message
    ?? lines.find((l) => !l.startsWith('gyp ') && /error|not found|no such file/i.test(l))
    ?? lines.find((l) => l.startsWith('gyp ERR! stack Error'))
    ?? `node-gyp exited with ${res.status}`;
  fallback(`${why.trim().slice(0, 160)}; see build/native-build.log`);
}
console.log('lmdistill: native backend built (build/Release/lmdistill_native.node)');
