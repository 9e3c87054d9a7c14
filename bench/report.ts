/**
 * The bench output: one JSON object per case (ours, every peer setting, the best peer, ratios) and the
 * human table printed after them unless --json.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { CaseSpec } from './cases.js';
import type { ChildResult } from './proc.js';
import type { PeerConfig } from './peers.js';

export interface Machine {
  cpu: string;
  cores: number;
  /** SIMD the CPU reports (from /proc/cpuinfo flags) */
  simd: string[];
  node: string;
  date: string;
}

export function machineInfo(): Machine {
  let flags: string[] = [];
  try {
    const m = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    flags = m ? m[1].trim().split(/\s+/) : [];
  } catch { /* not Linux: leave empty */ }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    simd: ['avx512f', 'avx512bw', 'avx512_bf16', 'avx2', 'fma'].filter((f) => flags.includes(f)),
    node: process.version,
    date: new Date().toISOString(),
  };
}

type Rec = Record<string, unknown>;

export interface PeerOutcome {
  cfg: PeerConfig;
  unset: Record<string, string>;
  result: ChildResult;
}

/** The peer entry of the JSON line: its settings, then its record (or its error). */
function peerEntry(p: PeerOutcome): Rec {
  const head = {
    label: p.cfg.label,
    interpreter: p.cfg.py.name,
    torch_threads: p.cfg.torchThreads,
    ...(p.cfg.openblasThreads !== undefined ? { openblas_threads: p.cfg.openblasThreads } : {}),
    malloc_tunables: p.cfg.mallocTunables,
    // the OpenBLAS overrides this peer removed from its own environment (empty: none were set)
    unset_env: p.unset,
    load_1m: p.result.load,
  };
  return p.result.ok ? { ...head, ok: true, ...p.result.record } : { ...head, ok: false, error: p.result.error };
}

const num = (r: Rec | null, k: string): number | undefined => (r && typeof r[k] === 'number' ? (r[k] as number) : undefined);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
/** The median over rounds of a side's per-round ms/step, when it ran more than one round. */
const roundMedian = (r: Rec | null): number | undefined =>
  r && Array.isArray(r.round_ms) && r.round_ms.length > 1 ? median(r.round_ms as number[]) : undefined;

/**
 * With --rounds N: every side's median over its N rounds, and the peer setting with the lowest one.
 * Each side's fastest round (the main ratios) favours whichever side has more draws from a noisy machine
 * — the peers as a group have one per setting and round — so this compares typical rounds instead.
 */
function roundMedians(oursRec: Rec, peers: Rec[]): Rec | null {
  const ours = roundMedian(oursRec);
  if (ours === undefined) return null;
  let best: { label: unknown; ms: number } | null = null;
  for (const p of peers) {
    const ms = roundMedian(p);
    if (ms !== undefined && (!best || ms < best.ms)) best = { label: p.label, ms };
  }
  if (!best) return null;
  return { rounds: (oursRec.round_ms as number[]).length, ours_ms: ours, peer: best.label, peer_ms: best.ms, speed: best.ms / ours };
}

/** Assembles the case's JSON line; the best peer is the one with the lowest median ms/step. */
export function caseLine(spec: CaseSpec, machine: Machine, ours: ChildResult, peers: PeerOutcome[], notes: string[]): Rec {
  const entries = peers.map(peerEntry);
  const okPeers = entries.filter((e) => e.ok === true);
  const best = okPeers.reduce<Rec | null>((b, e) => (b && (num(b, 'ms_per_step') ?? Infinity) <= (num(e, 'ms_per_step') ?? Infinity) ? b : e), null);
  const oursRec: Rec = ours.ok ? { ...ours.record, load_1m: ours.load } : { ok: false, error: ours.error, load_1m: ours.load };
  const rate = spec.kind === 'kd' ? 'tokens_per_s' : 'gflops';
  const ratio = (k: string): number | null => {
    const a = num(oursRec, k), b = num(best, k);
    return a !== undefined && b !== undefined && b !== 0 ? a / b : null;
  };
  const busy = [ours.load, ...peers.map((p) => p.result.load)].some((l) => Math.max(l.before, l.after) > machine.cores + 0.5);
  const allNotes = [...notes];
  if (busy) allNotes.push(`machine busy: 1-minute load average above ${machine.cores} cores during this case; timings are contended`);
  return {
    case: spec.name,
    kind: spec.kind,
    spec,
    machine,
    ours: oursRec,
    peer: best ? { label: best.label, [rate]: best[rate], ms_per_step: best.ms_per_step, cpu_ms_per_step: best.cpu_ms_per_step, peak_rss_mb: best.peak_rss_mb } : null,
    // cpu_ms_per_step: CPU time (all threads) per step, ours / best; steadier than wall time on a shared machine
    ratios: best ? { [rate]: ratio(rate), ms_per_step: ratio('ms_per_step'), cpu_ms_per_step: ratio('cpu_ms_per_step'), peak_rss_mb: ratio('peak_rss_mb') } : null,
    round_medians: roundMedians(oursRec, okPeers),
    peers: entries,
    notes: allNotes,
  };
}

const fmt = (v: unknown, digits = 1): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-');

/**
 * A table of every side of every case, with the ratio to the best peer: fixed-width text for the
 * terminal, or Markdown (bench/table.ts, for BENCHMARKS.md).
 */
export function formatTable(lines: Rec[], markdown = false): string {
  const rows: string[][] = [['case', 'side', 'ms/step', 'CPU ms/step', 'tok/s', 'GFLOP/s', 'peak RSS MB', 'faults/step', 'load']];
  const blank = rows[0].slice(2).map(() => '');
  for (const line of lines) {
    const ours = line.ours as Rec;
    const sideRow = (name: string, r: Rec): string[] => {
      const load = r.load_1m as { before: number; after: number } | undefined;
      if (r.ok === false) return [String(line.case), name, `error: ${String(r.error).slice(0, 80)}`, '', '', '', '', '', ''];
      return [String(line.case), name, fmt(r.ms_per_step, 2), fmt(r.cpu_ms_per_step, 0), fmt(r.tokens_per_s, 0), fmt(r.gflops, 1),
        fmt(r.peak_rss_mb, 0), fmt(r.minflt_per_step, 0), load ? `${fmt(load.before)}→${fmt(load.after)}` : ''];
    };
    rows.push(sideRow(`ours (${String(ours.backend ?? '?')})`, ours));
    const best = line.peer as Rec | null;
    for (const p of line.peers as Rec[]) rows.push(sideRow(`${best && p.label === best.label ? '* ' : '  '}${String(p.label)}`, p));
    const ratios = line.ratios as Rec | null;
    if (ratios) {
      const rate = line.kind === 'kd' ? 'tokens_per_s' : 'gflops';
      rows.push([String(line.case), `ours / best peer: speed ×${fmt(ratios[rate], 3)}, CPU time ×${fmt(ratios.cpu_ms_per_step, 2)}, peak RSS ×${fmt(ratios.peak_rss_mb, 2)}`, ...blank]);
    }
    const rm = line.round_medians as Rec | null | undefined;
    if (rm) rows.push([String(line.case), `median of ${String(rm.rounds)} rounds: ours ${fmt(rm.ours_ms, 2)} ms vs ${String(rm.peer)} ${fmt(rm.peer_ms, 2)} ms: speed ×${fmt(rm.speed, 3)}`, ...blank]);
    for (const n of line.notes as string[]) rows.push([String(line.case), `note: ${n}`, ...blank]);
  }
  if (markdown) {
    const md = (r: string[]): string => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
    return [md(rows[0]), md(rows[0].map((_, c) => (c >= 2 ? '---:' : '---'))), ...rows.slice(1).map(md)].join('\n') + '\n';
  }
  // long cells (labels, notes) in the side column set its width only up to a cap; the rest overflow
  const widths = rows[0].map((_, c) => Math.min(c === 1 ? 70 : 24, Math.max(...rows.map((r) => (r[c].length > 90 ? 0 : r[c].length)))));
  return rows.map((r) => r.map((cell, c) => (c >= 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n') + '\n';
}
