/**
 * The bounded poll for a state no event announces (a file follower's read, a child's file): the
 * settle point of last resort, after `guard.idle()` and `once(emitter, ...)`.
 */

export interface WaitForOptions {
  /** Gives up after this long. Default 15 000 ms. */
  timeoutMs?: number;
  /** Time between checks. Default 10 ms. */
  intervalMs?: number;
  /** What is awaited, for the failure message; a function is read at the timeout (to show progress). */
  message?: string | (() => string);
}

/** Resolves once `predicate` holds; rejects, naming what it waited for, after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeoutMs = 15_000, intervalMs = 10, message = 'the condition' }: WaitForOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) {
      const what = typeof message === 'function' ? message() : message;
      throw new Error(`waitFor: timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
