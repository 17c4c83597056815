import { parseDuration } from '../../../core/duration.js';

/** A request rate: `points` requests per `durationMs`. */
export interface RateSpec {
  readonly points: number;
  readonly durationMs: number;
}

/** `100/10s`, `5/s`, `600/1m`, `1000/1h30m`: requests, a slash, and a duration (`s`, `m`, `h` alone mean 1). */
export const RATE_PATTERN = '^[1-9]\\d{0,8}/(?:[smh]|(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h|d|w))+)$';

const rateRe = new RegExp(RATE_PATTERN);

/** Parses a rate, or returns `null` when it is not one (or its window is under 1 ms). */
export function parseRate(text: string): RateSpec | null {
  const trimmed = text.trim();
  if (!rateRe.test(trimmed)) return null;
  const slash = trimmed.indexOf('/');
  const points = Number(trimmed.slice(0, slash));
  let window = trimmed.slice(slash + 1);
  if (window === 's' || window === 'm' || window === 'h') window = `1${window}`;
  const durationMs = parseDuration(window);
  if (!(durationMs >= 1)) return null;
  return { points, durationMs };
}
