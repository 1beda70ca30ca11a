// Reconnection delays: exponential backoff with jitter.
//
// attempt 0 waits about `base` ms, each failure doubles it, never above `max`.
// The jitter removes up to `jitter` (a fraction) of the delay, so that many
// windows disconnected by the same server restart do not all come back in the
// same millisecond, while the delay never exceeds the cap.

/**
 * @param {number} attempt 0 for the first retry
 * @param {{base?: number, max?: number, jitter?: number, random?: () => number}} [opts]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, opts = {}) {
  const base = opts.base ?? 500;
  const max = opts.max ?? 30000;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const random = opts.random ?? Math.random;
  const n = Math.max(0, Math.min(Math.floor(attempt), 52));
  const delay = Math.min(max, base * 2 ** n);
  return Math.round(delay * (1 - jitter * random()));
}
