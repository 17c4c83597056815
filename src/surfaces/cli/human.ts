/** Output for people: relative times, plurals, aligned tables. */

const UNITS: readonly [string, number][] = [
  ['w', 7 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** `1h5m`, `59m`, `42s`, `2d3h`: the two largest units, rounded down; `0s` under a second. */
export function shortDuration(ms: number): string {
  let rest = Math.max(0, Math.floor(ms));
  let out = '';
  let used = 0;
  for (const [unit, size] of UNITS) {
    if (used === 2) break;
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
      used++;
    } else if (used > 0) break;
  }
  return out === '' ? '0s' : out;
}

/** `in 59m` for a time ahead of `nowMs`, `5m ago` for one behind, `never` for `null` (permanent). */
export function relativeTime(atMs: number | null, nowMs: number): string {
  if (atMs === null) return 'never';
  return atMs >= nowMs ? `in ${shortDuration(atMs - nowMs)}` : `${shortDuration(nowMs - atMs)} ago`;
}

export { plural } from '../../core/plural.js';

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A stats object as `key=value` pairs; a nested object is shown by its size (`files=2`). */
export function flatStats(stats: object): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(stats)) {
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) parts.push(`${key}=${value.length}`);
    else if (typeof value === 'object') parts.push(`${key}=${Object.keys(value).length}`);
    else parts.push(`${key}=${String(value)}`);
  }
  return parts.join(' ');
}

/**
 * Rows of a stats table: one per source, or one per part when a source's stats are a map of
 * parts (the log source's jails: `log sshd`).
 */
export function statsRows(all: Record<string, object>): string[][] {
  const rows: string[][] = [];
  for (const [name, stats] of Object.entries(all)) {
    const values = Object.values(stats);
    const parts =
      values.length > 0 && values.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v));
    if (parts)
      for (const [part, inner] of Object.entries(stats))
        rows.push([`${name} ${part}`, flatStats(inner as object) || '-']);
    else rows.push([name, flatStats(stats) || '-']);
  }
  return rows;
}
