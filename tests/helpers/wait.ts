/**
 * Event-driven waits for tests: wait for a condition (polled, with a deadline) instead of sleeping
 * for a guessed time. A sleep is either too short on a loaded machine (flaky) or longer than needed
 * (slow); a deadline is only reached when the thing really did not happen, and then the error says
 * what was awaited.
 */

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll every this many ms (default 10). */
  intervalMs?: number;
  /** What is awaited, for the error message (default: the condition's source); a function is called at the deadline. */
  what?: string | (() => string);
}

/**
 * Resolve with the first truthy value of `cond()`, polled every `intervalMs`; reject naming what
 * was awaited if none came within `timeoutMs`. A throwing `cond` rejects at once.
 */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000, intervalMs = opts.intervalMs ?? 10;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (performance.now() >= deadline) {
      const what = typeof opts.what === 'function' ? opts.what() : opts.what ?? cond.toString().slice(0, 200);
      throw new Error(`waitFor: ${what} did not happen within ${timeoutMs} ms`);
    }
    await new Promise(r => setTimeout(r, intervalMs));
  }
}

/** A latch a test opens: code that awaits `opened` proceeds only when the test says so. */
export class Gate {
  private release!: () => void;
  readonly opened: Promise<void> = new Promise<void>(ok => { this.release = ok; });
  isOpen = false;
  open(): void { this.isOpen = true; this.release(); }
}
