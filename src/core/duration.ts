import { ErrorCodes, PortcullisError } from './errors.js';

/** A ban or window that never ends. `bantime: -1` in the config. */
export const PERMANENT = -1;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;

/** The pattern a duration string must match, for the config schema. */
export const DURATION_PATTERN = '^(-1|\\d+|(\\d+(\\.\\d+)?(ms|s|m|h|d|w))+)$';

/**
 * Parses `90s`, `10m`, `1h30m`, `1d`, `2w`, `500ms` into milliseconds. A bare number is seconds,
 * as in fail2ban. `-1` (string or number) is {@link PERMANENT}.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (input === -1) return PERMANENT;
    if (Number.isFinite(input) && input >= 0) return Math.round(input * 1000);
    throw invalid(input);
  }
  const text = input.trim();
  if (text === '-1') return PERMANENT;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!DURATION_RE.test(text)) throw invalid(input);
  let total = 0;
  for (const match of text.matchAll(PART_RE)) {
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  return Math.round(total);
}

/** Formats milliseconds the way the config writes them: `1h30m`, `2w`, `-1`. */
export function formatDuration(ms: number): string {
  if (ms === PERMANENT || !Number.isFinite(ms)) return '-1';
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] as number;
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}

function invalid(input: unknown): PortcullisError {
  return new PortcullisError(
    ErrorCodes.INVALID_DURATION,
    `expected a duration like "10m", got ${JSON.stringify(input)}`,
  );
}
