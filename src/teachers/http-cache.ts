/**
 * An on-disk cache of HTTP responses, content-addressed: the key is the SHA-256 of the canonical JSON of
 * everything that determines the answer (server URL, model, request body), and each response is one file
 * `<dir>/<key[0..2]>/<key>.json`, written atomically (temp file, fsync, rename: `writeFileAtomic`).
 *
 * Consequences: a job killed at any instant leaves only complete entries (plus, at worst, a stray temp
 * file that readers never look at and `sweep` removes); a restarted job finds every answer it already
 * has; the same request can never be stored twice; several jobs may share one directory (identical
 * requests write identical files, and the rename is atomic).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

const FORMAT = 1;

/** JSON with object keys sorted at every level, so equal values always hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

/** Stored next to each response so a cache directory can be inspected by hand. */
interface Entry {
  format: number;
  key: string;
  /** what was asked, for humans (the key already identifies it) */
  about: Record<string, unknown>;
  response: unknown;
}

export class ResponseCache {
  constructor(readonly dir: string) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new UserError(`cannot create the request cache ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  /** The key of a request: SHA-256 (hex) of its canonical JSON. */
  static key(request: unknown): string {
    return createHash('sha256').update(canonicalJson(request)).digest('hex');
  }

  private file(key: string): string {
    return path.join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  /**
   * The stored response for `key`, or undefined. An unreadable or foreign file (not written by this
   * class) counts as absent, so the request is made again and the entry rewritten.
   */
  get(key: string): unknown {
    let text: string;
    try {
      text = fs.readFileSync(this.file(key), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new UserError(`cannot read the request cache entry ${this.file(key)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      const entry = JSON.parse(text) as Entry;
      return entry.format === FORMAT && entry.key === key ? entry.response : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stores `response` under `key` atomically (replacing any previous entry). */
  put(key: string, response: unknown, about: Record<string, unknown> = {}): void {
    const file = this.file(key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const entry: Entry = { format: FORMAT, key, about, response };
    writeFileAtomic(file, JSON.stringify(entry));
  }

  /** Keys of every complete entry (for inspection and tests). */
  keys(): string[] {
    const out: string[] = [];
    for (const sub of fs.readdirSync(this.dir)) {
      const d = path.join(this.dir, sub);
      if (!/^[0-9a-f]{2}$/.test(sub) || !fs.statSync(d).isDirectory()) continue;
      for (const f of fs.readdirSync(d)) {
        const m = /^([0-9a-f]{64})\.json$/.exec(f);
        if (m) out.push(m[1]!);
      }
    }
    return out.sort();
  }

  /**
   * Removes temp files a killed writer left behind. Only files older than `olderThanMs` are touched, so
   * a write in flight in another process (sharing the directory) is never disturbed.
   */
  sweep(olderThanMs = 10 * 60_000): number {
    let removed = 0;
    const now = Date.now();
    for (const sub of fs.readdirSync(this.dir)) {
      const d = path.join(this.dir, sub);
      if (!/^[0-9a-f]{2}$/.test(sub) || !fs.statSync(d).isDirectory()) continue;
      for (const f of fs.readdirSync(d)) {
        if (!f.includes('.json.tmp-')) continue;
        const p = path.join(d, f);
        try {
          if (now - fs.statSync(p).mtimeMs > olderThanMs) {
            fs.rmSync(p, { force: true });
            removed++;
          }
        } catch {
          // another process renamed or removed it meanwhile
        }
      }
    }
    return removed;
  }
}
