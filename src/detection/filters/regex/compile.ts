import type RE2 from 're2';
import { re2Program } from '../re2-cache.js';
import { render, type Token } from './regex-syntax.js';
import { GROUP } from './tags.js';

/** A pattern RE2 refused; `reason` is RE2's own words (`invalid perl operator: (?=`). */
export class Re2CompileError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
  ) {
    super(`RE2 cannot compile ${JSON.stringify(pattern)}: ${reason}`);
  }
}

/** Compiles with RE2 (linear-time matching). Throws {@link Re2CompileError}. */
export function compileRe2(pattern: string): RE2 {
  try {
    return re2Program(pattern);
  } catch (error) {
    throw new Re2CompileError(pattern, (error as Error).message);
  }
}

/** Where each named group of a compiled pattern is, by capture index (1-based). */
export interface GroupIndex {
  /** Field name → capture indexes, in pattern order. Internal names start with `__`. */
  readonly byName: ReadonlyMap<string, readonly number[]>;
  /** How many capturing groups there are. */
  readonly count: number;
}

const NONE: ReadonlySet<string> = new Set();

/**
 * Rewrites a pattern so that only named groups capture, and those by position: `(?P<user>x)` →
 * `(x)`, `(x)` → `(?:x)`. Positional captures keep RE2's result small (it is the main cost of a
 * match) and let several groups share a name. Groups named in `drop` stop capturing.
 */
export function positionalGroups(
  tokens: readonly Token[],
  drop: ReadonlySet<string> = NONE,
): { pattern: string; groups: GroupIndex } {
  const byName = new Map<string, number[]>();
  let count = 0;
  const out: Token[] = [];
  for (const token of tokens) {
    if (token.kind === 'open' && token.capture) {
      if (token.name === undefined || drop.has(token.name)) {
        out.push({ kind: 'open', raw: '(?:', capture: false, name: undefined, flags: '' });
        continue;
      }
      count++;
      const list = byName.get(token.name);
      if (list === undefined) byName.set(token.name, [count]);
      else list.push(count);
      out.push({ kind: 'open', raw: '(', capture: true, name: token.name, flags: '' });
      continue;
    }
    out.push(token);
  }
  return { pattern: render(out), groups: { byName, count } };
}

/** True when the pattern has a group that yields the event's IP. */
export function hasHostGroup(tokens: readonly Token[]): boolean {
  return tokens.some(
    (t) => t.kind === 'open' && (t.name === GROUP.host || t.name === GROUP.cidr || t.name === 'host'),
  );
}
