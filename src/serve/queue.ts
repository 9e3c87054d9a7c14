/**
 * Admission control for CPU work: at most `maxConcurrency` requests generate at once, at most
 * `maxQueue` wait for a slot (first come, first served), and one more is refused at once (the
 * caller turns that into a 429) instead of piling up latency nobody will wait for.
 */

/** Thrown by `acquire` when both the running slots and the waiting line are full. */
export class QueueFullError extends Error {
  constructor(readonly running: number, readonly waiting: number) {
    super(`server busy: ${running} requests running and ${waiting} waiting`);
    this.name = 'QueueFullError';
  }
}

/** Thrown by `acquire` after `close()` (the server is shutting down). */
export class QueueClosedError extends Error {
  constructor() {
    super('server is shutting down');
    this.name = 'QueueClosedError';
  }
}

interface Waiter {
  grant: (release: () => void) => void;
  reject: (err: unknown) => void;
}

export class WorkQueue {
  private running = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(readonly maxConcurrency: number, readonly maxQueue: number) {}

  get stats(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiters.length };
  }

  /**
   * Resolves with a `release` function once a slot is free (call it exactly once when done; extra
   * calls are ignored). Rejects with `QueueFullError` immediately when the line is full, with
   * `signal.reason` if `signal` aborts while waiting, and after `close()`.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.closed) return Promise.reject(new QueueClosedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.maxConcurrency) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.maxQueue) return Promise.reject(new QueueFullError(this.running, this.waiters.length));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => { signal?.removeEventListener('abort', onAbort); resolve(release); },
        reject: (err) => { signal?.removeEventListener('abort', onAbort); reject(err); },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Refuses new work and fails everything still waiting (running work finishes normally). */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new QueueClosedError());
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so `running` never dips and lets a newcomer jump the line.
      if (next) next.grant(this.releaser());
      else this.running--;
    };
  }
}
