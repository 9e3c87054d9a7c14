/**
 * Terminal reporting for long jobs: a cli-progress bar (step, loss, tokens/s, ETA) on a TTY, and a
 * plain line every few seconds otherwise (CI logs). Everything goes to stderr; stdout stays for results.
 */
import cliProgress from 'cli-progress';

export interface Reporter {
  /** starts (or restarts) a bar for `total` units */
  start(total: number, start: number, label: string): void;
  update(value: number, fields: Record<string, string>): void;
  stop(): void;
  /** a message line that does not break the bar */
  log(msg: string): void;
}

export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function createReporter(stream: NodeJS.WriteStream = process.stderr): Reporter {
  if (stream.isTTY && !process.env.CI) {
    let bar: cliProgress.SingleBar | null = null;
    return {
      start(total, start, label) {
        bar?.stop();
        bar = new cliProgress.SingleBar({
          format: `${label} {bar} {value}/{total} {info}`, stream, hideCursor: true, clearOnComplete: false, barsize: 28,
        }, cliProgress.Presets.shades_classic);
        bar.start(total, start, { info: '' });
      },
      update(value, fields) {
        bar?.update(value, { info: Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' · ') });
      },
      stop() { bar?.stop(); bar = null; },
      log(msg) {
        if (bar) { stream.clearLine(0); stream.cursorTo(0); }
        stream.write(msg + '\n');
        if (bar) bar.render();
      },
    };
  }
  let lastPrint = 0, label = '', total = 0;
  return {
    start(t, _s, l) { total = t; label = l; lastPrint = 0; },
    update(value, fields) {
      const now = Date.now();
      if (now - lastPrint < 5000 && value < total) return;
      lastPrint = now;
      stream.write(`${label} ${value}/${total} ${Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' · ')}\n`);
    },
    stop() {},
    log(msg) { stream.write(msg + '\n'); },
  };
}
