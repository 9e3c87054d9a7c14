/**
 * The PyTorch peers: which interpreters have torch, which thread/allocator settings each is run with,
 * and the environment each peer process gets.
 *
 * Settings, per interpreter (× with and without the glibc malloc tunables below; the runner compares
 * against the best of all of them):
 *   - OpenBLAS builds (Debian's python3-torch): 1 torch thread + OPENBLAS_NUM_THREADS = cores, the
 *     fastest split measured on the 2-core bench machine.
 *   - MKL builds (the pip wheel): torch threads = cores, and 1 (OpenMP's spinning workers lose badly
 *     when the cores are shared with other processes, so the single-thread run is often its best).
 *   `--peer-sweep` adds the other splits. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from the
 *   peer's environment (only the peer's; reported as `unset_env`) so OpenBLAS picks kernels for the CPU
 *   it actually runs on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runJsonChild } from './proc.js';

/** Keep freed big blocks in the heap instead of unmapping them: no fresh-page faults on every step. */
export const MALLOC_TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184';
const OPENBLAS_OVERRIDES = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

export interface PythonTorch {
  /** short name: debian, venv, or the interpreter path */
  name: string;
  python: string;
  torch: string;
  /** where torch was imported from (two interpreters sharing one torch are benched once) */
  torchFile: string;
  blas: 'mkl' | 'openblas' | 'other';
  /** OpenBLAS kernel set picked at load time (e.g. Zen, SkylakeX), if OpenBLAS */
  openblasCore?: string;
}

export interface PeerConfig {
  label: string;
  py: PythonTorch;
  torchThreads: number;
  /** OPENBLAS_NUM_THREADS for the peer (undefined: leave the variable as inherited) */
  openblasThreads?: number;
  mallocTunables: boolean;
}

const PROBE = `
import json, sys
sys.path.insert(0, sys.argv[1])
try:
    import torch
    import peer_common as pc
except Exception as e:
    print(json.dumps({"ok": False, "reason": "import torch failed: %s" % e})); sys.exit(0)
b = pc.blas_info()
print(json.dumps({"ok": True, "torch": torch.__version__, "file": torch.__file__, "blas": b["kind"],
                  "core": (b["openblas"] or {}).get("corename")}))
`;

/** Interpreters to try: Debian's python3 (apt python3-torch), the repo's .venv, and any `--python`. */
export function candidatePythons(repoRoot: string, extra: string[]): { name: string; python: string }[] {
  const list = [
    { name: 'debian', python: '/usr/bin/python3' },
    { name: 'venv', python: path.join(repoRoot, '.venv', 'bin', 'python') },
    ...extra.map((p) => ({ name: p, python: p })),
  ];
  return list.filter((c, i) => list.findIndex((d) => d.python === c.python) === i);
}

/** Interpreters that import torch, and why the others were skipped. */
export async function discoverTorch(repoRoot: string, extra: string[], keepOpenblasEnv = false): Promise<{ found: PythonTorch[]; skipped: { python: string; reason: string }[] }> {
  const found: PythonTorch[] = [];
  const skipped: { python: string; reason: string }[] = [];
  for (const c of candidatePythons(repoRoot, extra)) {
    if (!fs.existsSync(c.python)) { skipped.push({ python: c.python, reason: 'not found' }); continue; }
    const r = await runJsonChild(c.python, ['-c', PROBE, path.join(repoRoot, 'bench')], peerEnvBase(process.env, keepOpenblasEnv).env, repoRoot, 120_000);
    if (!r.ok) { skipped.push({ python: c.python, reason: r.error }); continue; }
    const rec = r.record as { ok: boolean; reason?: string; torch: string; file: string; blas: PythonTorch['blas']; core?: string | null };
    if (!rec.ok) { skipped.push({ python: c.python, reason: rec.reason ?? 'no torch' }); continue; }
    if (found.some((f) => f.torchFile === rec.file)) { skipped.push({ python: c.python, reason: `same torch as another interpreter (${rec.file})` }); continue; }
    found.push({ name: c.name, python: c.python, torch: rec.torch, torchFile: rec.file, blas: rec.blas, ...(rec.core ? { openblasCore: rec.core } : {}) });
  }
  return { found, skipped };
}

/** The settings each interpreter is run with (see the module comment). */
/** Which allocator settings to run each peer with: both (the default), or one of them. */
export type MallocChoice = 'both' | 'tunables' | 'default';
export const MALLOC_CHOICES: readonly MallocChoice[] = ['both', 'tunables', 'default'];

/**
 * The settings each interpreter is run with (see the module comment). Labels are short for the table:
 * `t1` = 1 torch thread, `ob2` = OPENBLAS_NUM_THREADS=2, `+malloc` = with MALLOC_TUNABLES.
 */
export function peerConfigs(pythons: PythonTorch[], cores: number, opts: { sweep: boolean; malloc: MallocChoice }): PeerConfig[] {
  const out: PeerConfig[] = [];
  const mallocs = opts.malloc === 'both' ? [false, true] : [opts.malloc === 'tunables'];
  for (const py of pythons) {
    const splits: { t: number; ob?: number }[] = py.blas === 'openblas'
      ? [{ t: 1, ob: cores }, ...(opts.sweep ? [{ t: cores, ob: 1 }, { t: cores, ob: cores }, { t: 1, ob: 1 }] : [])]
      : cores > 1 ? [{ t: cores }, { t: 1 }] : [{ t: 1 }];
    for (const s of splits) {
      for (const mallocTunables of mallocs) {
        const blas = `${py.blas}${py.openblasCore ? `/${py.openblasCore}` : ''}`;
        const label = `${py.name} torch ${py.torch} ${blas} t${s.t}${s.ob !== undefined ? `·ob${s.ob}` : ''}${mallocTunables ? ' +malloc' : ''}`;
        out.push({ label, py, torchThreads: s.t, ...(s.ob !== undefined ? { openblasThreads: s.ob } : {}), mallocTunables });
      }
    }
  }
  return out;
}

/** The parent's environment minus the OpenBLAS core/cache overrides (returned as `unset`). */
function peerEnvBase(parent: NodeJS.ProcessEnv, keepOpenblasEnv = false): { env: NodeJS.ProcessEnv; unset: Record<string, string> } {
  const env = { ...parent };
  const unset: Record<string, string> = {};
  if (!keepOpenblasEnv) {
    for (const k of OPENBLAS_OVERRIDES) {
      if (env[k] !== undefined) { unset[k] = env[k]!; delete env[k]; }
    }
  }
  return { env, unset };
}

/** The environment of one peer process, and which inherited variables it unset for itself. */
export function peerEnv(parent: NodeJS.ProcessEnv, cfg: PeerConfig, keepOpenblasEnv: boolean): { env: NodeJS.ProcessEnv; unset: Record<string, string> } {
  const { env, unset } = peerEnvBase(parent, keepOpenblasEnv);
  if (cfg.openblasThreads !== undefined) env.OPENBLAS_NUM_THREADS = String(cfg.openblasThreads);
  return { env: withMallocTunables(env, cfg.mallocTunables), unset };
}

/**
 * `env` with MALLOC_TUNABLES added to GLIBC_TUNABLES (on) or those two keys removed (off). Other tunables
 * the user set survive: only glibc.malloc.mmap_max / trim_threshold are ours to toggle.
 */
export function withMallocTunables(env: NodeJS.ProcessEnv, on: boolean): NodeJS.ProcessEnv {
  const out = { ...env };
  const kept = (out.GLIBC_TUNABLES ?? '').split(':').filter((s) => s && !/^glibc\.malloc\.(mmap_max|trim_threshold)=/.test(s));
  const parts = on ? [...kept, ...MALLOC_TUNABLES.split(':')] : kept;
  if (parts.length) out.GLIBC_TUNABLES = parts.join(':');
  else delete out.GLIBC_TUNABLES;
  return out;
}

export const INSTALL_HINT =
  'no PyTorch found, so only our side was measured. For the peer, install Debian\'s torch with OpenBLAS: ' +
  '`apt-get install -y python3-torch libopenblas0-pthread` (and/or the pip wheel into .venv: ' +
  '`python3 -m venv .venv && .venv/bin/pip install torch`), then rerun.';
