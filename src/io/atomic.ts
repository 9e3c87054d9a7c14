/**
 * Crash-safe file and directory replacement. A crash (SIGKILL, power loss) at any instant leaves the
 * target either as its old complete contents or its new complete contents, never a mix:
 *
 *  - files: write `<path>.tmp-<pid>-<rand>`, fsync it, rename it over `<path>` (atomic on POSIX),
 *    fsync the parent directory so the rename itself is durable;
 *  - directories (checkpoints): build `<dir>.tmp-<token>` completely and fsync it, then
 *    rename the old `<dir>` to `<dir>.old-<token>`, rename the new one in, and delete the old one.
 *    Node has no portable atomic directory swap (renameat2 RENAME_EXCHANGE), so there is one instant
 *    where `<dir>` is absent; `recoverDir` (called by `writeDirAtomic` and meant to be called before
 *    reading a checkpoint) finishes or undoes an interrupted swap using the shared `<token>`.
 *
 * All functions are synchronous: they run at checkpoint time, between training steps, where blocking is
 * what we want (the next step must not mutate the weights being written).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.js';

/** File contents: bytes, a UTF-8 string, or a list of byte chunks written in order (avoids one big copy). */
export type FileData = Uint8Array | string | readonly Uint8Array[];

function token(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Wraps an fs error (disk full, permission, missing folder) into a UserError naming `what`. */
function ioError(what: string, err: unknown): UserError {
  const e = err as NodeJS.ErrnoException;
  const reason = e && typeof e === 'object' && 'code' in e && e.code ? `${e.code}: ${e.message}` : String(err);
  return new UserError(`cannot ${what}: ${reason}`);
}

/** fsyncs a directory so renames/creations inside it survive power loss. No-op where unsupported. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    // Windows cannot open/fsync directories (EISDIR/EPERM/EINVAL); durability there rests on NTFS.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes `data` to a fresh file at `p` and fsyncs it (no rename). */
function writeAndSync(p: string, data: FileData): void {
  const fd = fs.openSync(p, 'wx', 0o644);
  try {
    const chunks = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Atomically replaces (or creates) the file `filePath` with `data`. Readers see the old file or the new
 * one, never a partial write. Throws `UserError` on I/O failure (missing folder, disk full, permission);
 * the temporary file is removed in that case.
 */
export function writeFileAtomic(filePath: string, data: FileData): void {
  const tmp = `${filePath}.tmp-${token()}`;
  try {
    writeAndSync(tmp, data);
    fs.renameSync(tmp, filePath);
    fsyncDir(path.dirname(path.resolve(filePath)));
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw ioError(`write ${filePath}`, err);
  }
}

/** Rejects names that would escape the directory being built. */
function checkRelativeName(dir: string, name: string): void {
  const parts = name.split(/[\\/]/);
  if (name === '' || path.isAbsolute(name) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new UserError(`cannot write ${dir}: file name ${JSON.stringify(name)} must be a relative path without "." or ".." parts`);
  }
}

/**
 * Atomically replaces (or creates) the directory `dir` so it holds exactly `files` (relative name →
 * contents; names may contain `/` for subfolders). A crash leaves either the complete old directory or the
 * complete new one (after `recoverDir(dir)`; see the module comment). Throws `UserError` on I/O failure.
 */
export function writeDirAtomic(dir: string, files: Record<string, FileData>): void {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  for (const name of Object.keys(files)) checkRelativeName(dir, name);
  recoverDir(target);
  const tok = token();
  const tmp = `${target}.tmp-${tok}`;
  const old = `${target}.old-${tok}`;
  try {
    fs.mkdirSync(tmp);
    const dirs = new Set<string>([tmp]);
    for (const [name, data] of Object.entries(files)) {
      const p = path.join(tmp, name);
      const sub = path.dirname(p);
      if (!dirs.has(sub)) {
        fs.mkdirSync(sub, { recursive: true });
        for (let d = sub; d.length > tmp.length; d = path.dirname(d)) dirs.add(d);
      }
      writeAndSync(p, data);
    }
    // Deepest first so every entry is durable before the directory holding it.
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) fsyncDir(d);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw ioError(`write ${dir}`, err);
  }
  try {
    fsyncDir(parent);
    const hadOld = fs.existsSync(target);
    if (hadOld) {
      fs.renameSync(target, old);
      fsyncDir(parent);
    }
    fs.renameSync(tmp, target);
    fsyncDir(parent);
    if (hadOld) fs.rmSync(old, { recursive: true, force: true });
  } catch (err) {
    throw ioError(`replace ${dir}`, err);
  }
}

/**
 * Repairs the state an interrupted `writeDirAtomic(dir)` can leave behind, and removes its leftovers:
 *  - `dir` missing but `dir.old-T` and a complete `dir.tmp-T` present → crash between the two renames:
 *    the new directory was complete (it is fsynced before the old one is moved), so it is moved in;
 *  - `dir` missing, only `dir.old-T` present → the old one is moved back;
 *  - otherwise stale `dir.tmp-*` (unfinished builds) and `dir.old-*` (already replaced) are deleted.
 * Call it before reading a checkpoint directory. Not safe to run while another process writes `dir`.
 */
export function recoverDir(dir: string): void {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  const base = path.basename(target);
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(`read ${parent}`, err);
  }
  const olds = entries.filter((e) => e.startsWith(`${base}.old-`));
  const tmps = entries.filter((e) => e.startsWith(`${base}.tmp-`));
  try {
    if (!fs.existsSync(target) && olds.length > 0) {
      // At most one swap can be in flight for a directory; take the most recent if several exist.
      const byTime = olds
        .map((o) => ({ o, t: fs.statSync(path.join(parent, o)).mtimeMs }))
        .sort((a, b) => b.t - a.t);
      const o = byTime[0].o;
      const paired = `${base}.tmp-${o.slice(base.length + '.old-'.length)}`;
      const from = tmps.includes(paired) ? paired : o;
      fs.renameSync(path.join(parent, from), target);
      fsyncDir(parent);
    }
    for (const e of [...olds, ...tmps]) {
      const p = path.join(parent, e);
      if (fs.existsSync(p)) fs.rmSync(p, { recursive: true, force: true });
    }
  } catch (err) {
    throw ioError(`recover ${dir}`, err);
  }
}
