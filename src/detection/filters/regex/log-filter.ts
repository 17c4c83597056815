import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { detach } from '../../../core/detach.js';
import { ConfigError } from '../../../core/errors.js';
import { normalizeIp, parseCidr } from '../../../core/ip.js';
import { isCanonicalIPv6 } from '../../../core/ipv6-text.js';
import {
  createDateDetector,
  cutText,
  type DateCut,
  type DateDetector,
  stripCut,
} from '../../../sources/log/dates.js';
import { RE2 } from '../re2-cache.js';
import { compileRe2, type GroupIndex, hasHostGroup, positionalGroups, Re2CompileError } from './compile.js';
import { DnsCache, type DnsCacheOptions, isDnsName, type UseDns } from './dns.js';
import {
  type RegexSource,
  type ResolvedFilterDefinition,
  resolveFilterDefinition,
} from './filter-definition.js';
import { hasSurrogate, type JsTwin, jsTwin } from './js-twin.js';
import { KeyScanner, type LinePrefilter, linePrefilter } from './line-prefilter.js';
import { matchingClose, render, splitTopLevel, type Token, tokenize } from './regex-syntax.js';
import { type Session, type SessionSnapshot, SessionTable } from './sessions.js';
import { expandTags, GROUP, TagError } from './tags.js';

/**
 * Log filters: fail2ban's `prefregex` / `failregex` / `ignoreregex` model on RE2.
 *
 * How a line is processed:
 *
 * 1. It is cut to `maxLineLength` characters.
 * 2. Its date is found (see `sources/log/dates.ts`) and cut out; the rest is the *text*. A line
 *    without a date gets the time it was read (`now()`) and counts as undated.
 * 3. `prefregex`, when there is one, must match the whole text; its `<F-CONTENT>` part is the
 *    *content*. Without a prefregex the content is the text.
 * 4. The failregexes are tried in order against the content; the first that matches decides.
 *    `^` and `$` mean the start and end of the content; a regex without them is searched for.
 * 5. A failure whose content matches an `ignoreregex` (searched, or anchored to the content) is
 *    ignored. Ignoreregexes are only tried on lines a failregex matched.
 * 6. The host is normalised (`::ffff:1.2.3.4` → `1.2.3.4`); a host that is not an IP literal (a DNS
 *    name) makes the line a missed one, counted as `badHost`, unless `usedns` is `yes` or `warn`:
 *    then the name is looked up in the background and the failure is handed to `onResolved` when
 *    the lookup settles (one failure per address), or at once when the name is in the cache.
 *
 * Trailing blanks (spaces, tabs, a CR) are cut from the text before matching.
 *
 * Speed: the literal text each regex's matches must contain (`sshd`, one of `Failed password for `,
 * `Failed none for `) is proven from the pattern (line-prefilter.ts); one scan of the line for
 * every failregex's key says which can match at all, so most lines never reach a regex. When
 * prefregex and a failregex have the simple shape (anchors only at their ends, content `.+`), they
 * are compiled into one program. Every pattern is compiled by RE2, which judges it; it runs as its
 * V8 twin where one could be made (js-twin.ts: the same matches and captures, several times
 * cheaper than a call into RE2, and bounded in time by V8's linear-time fallback), else on RE2.
 */

export interface LogFilterOptions {
  /** Mode of a filter with `modes:`. Default the filter's `mode`, else `normal`. */
  mode?: string;
  /** strftime-style date pattern overriding the filter's; `{NONE}`: lines carry no date. */
  datepattern?: string;
  /** Zone of zone-less times: `UTC`, `+0100`, `Europe/Berlin`. Default the host's zone. */
  logtimezone?: string;
  /** Lines are cut to this many characters before matching. Default 16384. */
  maxLineLength?: number;
  /** Reference clock (ms) for year inference and the time of undated lines. Default `Date.now`. */
  now?: () => number;
  /** Relative filter paths resolve against this. Default the working directory. */
  baseDir?: string;
  /** What error messages call an inline filter, e.g. `portcullis.yaml: jails.sshd.filter`. Default `filter`. */
  where?: string;
  /** What error messages call the place `mode`, `datepattern`, ... are set, e.g. `portcullis.yaml: jails.sshd`. */
  optionsWhere?: string;
  /** DNS names in place of an address: `no` (default), `warn`, `yes`; see `dns.ts`. */
  usedns?: UseDns;
  /** The cache and resolver for `usedns` (a shared cache, or options for this filter's own). */
  dns?: DnsCache | DnsCacheOptions;
  /** Receives the failures of lines whose name resolved after `processLine` returned. */
  onResolved?: (matches: LogMatch[]) => void;
  /** `usedns: warn`: called once per name, when it first resolves. */
  onDnsWarning?: (name: string, ips: readonly string[]) => void;
}

/** One failure found in a line. */
export interface LogMatch {
  /** Normalised IP of the client. */
  ip: string;
  /** The line's time (ms since the epoch); the time of reading when the line had no date. */
  timeMs: number;
  /** Captured fields (`user`, ...), the session's fields under them for multi-line filters. */
  fields: Record<string, string>;
  /** Which failregex matched (index in the filter's `failregex` list, mode entries last). */
  regexIndex: number;
}

export interface LineResult {
  /**
   * - `match`: one failure or more (`matches`);
   * - `ignored`: a failregex matched but so did an ignoreregex;
   * - `info`: a failregex matched but no failure results now: a `<F-NOFAIL>` line, or a failure
   *   waiting for a later line of its session to name the client;
   * - `missed`: nothing matched (or the host was not an IP, see `badHost`);
   * - `no-date`: nothing matched and the line had no date (a continuation line, a blank line).
   */
  kind: 'match' | 'ignored' | 'info' | 'missed' | 'no-date';
  matches: LogMatch[];
  /** The date format found in the line; `undefined` when it had none. */
  dateFormat?: string;
  /** The failregex that matched this line (also for `ignored` and `info`). */
  regexIndex?: number;
  /** The ignoreregex that matched, for `ignored`. */
  ignoreIndex?: number;
  /** The host text of a match that is not an IP address (a DNS name), for `missed`. */
  badHost?: string;
  /** `usedns`: the name being looked up, for `info`; the failure goes to `onResolved`. */
  resolving?: string;
}

export interface CompiledLogFilter {
  /** Bundled name, file path, or `inline`. */
  readonly name: string;
  readonly description: string;
  readonly mode: string;
  /** The failregexes as written (mode entries last); `regexIndex` points into this. */
  readonly failregex: readonly string[];
  readonly ignoreregex: readonly string[];
  /**
   * Classifies one line. Never throws; a line it cannot handle is `missed`. Results are read-only
   * (those of missed lines are shared).
   */
  processLine(line: string): LineResult;
  /** Forgets multi-line sessions (a rotated or truncated file). */
  reset(): void;
  /**
   * True when results depend on earlier lines (the filter keeps `<F-MLFID>` sessions); otherwise
   * each line is judged alone and a log can be cut anywhere between lines.
   */
  readonly usesSessions: boolean;
  /** The multi-line sessions as plain data (for handing a log's state to another worker). */
  sessionState(): SessionSnapshot;
  /** Replaces the sessions with those of {@link sessionState}. */
  restoreSessions(state: SessionSnapshot): void;
  /** Settles when every DNS lookup started by `usedns` has been handed to `onResolved`. */
  settled(): Promise<void>;
}

/** Default line cut, in characters. */
export const DEFAULT_MAX_LINE_LENGTH = 16_384;

const NO_MATCHES = Object.freeze([]) as unknown as LogMatch[];
/** Host texts whose normalised form is remembered (the cache is emptied when full). */
const HOST_CACHE_SIZE = 4096;

/**
 * Loads and compiles a log filter: `spec` is a bundled name (`sshd`), a path to a YAML file, or an
 * inline definition. `rulesDir` holds `<name>.yaml` files (a directory with a `filters/`
 * subdirectory means that subdirectory); default the bundled `rules/filters/`. Throws
 * {@link ConfigError} with one line per problem (`where: failregex.2: RE2 cannot compile ...`).
 */
export function loadLogFilter(
  spec: string | Record<string, unknown>,
  options: LogFilterOptions = {},
  rulesDir?: string,
): CompiledLogFilter {
  const dir =
    rulesDir !== undefined && existsSync(join(rulesDir, 'filters')) ? join(rulesDir, 'filters') : rulesDir;
  const optionsWhere = options.optionsWhere === undefined ? '' : `${options.optionsWhere}.`;
  const definition = resolveFilterDefinition(spec, options.mode, {
    ...(dir === undefined ? {} : { rulesDir: dir }),
    ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }),
    ...(options.where === undefined ? {} : { where: options.where }),
    modeWhere: `${optionsWhere}mode`,
  });
  return new RegexLogFilter(definition, options, optionsWhere);
}

interface Slots {
  fields: [name: string, indexes: readonly number[]][];
  host: readonly number[];
  cidr: readonly number[];
  mlfid: readonly number[];
  nofail: readonly number[];
  forget: readonly number[];
  content: number;
}

interface FailRegex {
  index: number;
  /** The literal text a line must hold for this regex to match (`null`: nothing proven). */
  prefilter: LinePrefilter | null;
  /** Prefregex and failregex as one program over the text (`null`: use `own` on the content). */
  full: RE2 | null;
  /** Its pattern, for the set matcher. */
  fullPattern: string | null;
  /** Its index in the set matcher, -1 when not in it. */
  setIndex: number;
  /** Lines `full` was run on, and how many it matched: a regex that mostly fails is tested first. */
  tries: number;
  hits: number;
  /**
   * A failure that names its client and is neither `<F-NOFAIL>` nor `<F-MLFFORGET>` takes no part
   * in sessions: its `<F-MLFID>` is not captured (a capture and a table update saved on most
   * matching lines). Sessions learn a client from the lines written to name one ("Connection
   * from", closing lines), and failures without a client wait for those.
   */
  noSession: boolean;
  fullSlots: Slots | null;
  /** `full`'s V8 twin (see js-twin.ts), which fills the captures far faster; `null`: none. */
  fullJs: JsTwin | null;
  own: RE2;
  ownJs: JsTwin | null;
  ownSlots: Slots;
}

interface IgnoreRegex {
  prefilter: LinePrefilter | null;
  re: RE2;
  js: JsTwin | null;
}

interface Prefix {
  re: RE2;
  js: JsTwin | null;
  slots: Slots;
  prefilter: LinePrefilter | null;
  /** Pieces for composing with a failregex, when the prefregex has the simple shape. */
  compose: { head: string; tail: string } | null;
}

class RegexLogFilter implements CompiledLogFilter {
  readonly name: string;
  readonly description: string;
  readonly mode: string;
  readonly failregex: readonly string[];
  readonly ignoreregex: readonly string[];
  readonly #regexes: FailRegex[] = [];
  readonly #ignores: IgnoreRegex[] = [];
  readonly #prefix: Prefix | null;
  readonly #prefixPrefilter: LinePrefilter | null;
  readonly #dates: DateDetector | null;
  readonly #now: () => number;
  readonly #maxLineLength: number;
  readonly #sessions: SessionTable;
  readonly #undatedIsMissed: boolean;
  /** Cut only the date's own text (fail2ban filters), not the blanks around it. */
  readonly #cutDateOnly: boolean;
  /** Named groups compiled as non-capturing (an unused <F-MLFID>). */
  readonly #drop: ReadonlySet<string>;
  readonly #missedResults = new Map<string | undefined, LineResult>();
  #lastMissed: LineResult | undefined;
  readonly #hosts = new Map<string, string>();
  /** Finds which failregexes' key literals a line holds (`null`: some regex has no key). */
  readonly #keys: KeyScanner | null;
  readonly #candidateIndexes: number[] = [];
  /** Where the text of the line being processed comes from (one object, reused). */
  readonly #cut: DateCut = { before: 0, sep: '', after: 0 };
  readonly #candidates: FailRegex[] = [];
  /**
   * Every composed failregex in one RE2.Set: a line that passes the literal prefilter of two
   * failregexes or more is matched against all of them in one capture-less call, and only the
   * first that matches is run for its captures (a near-miss costs one call, not one per regex).
   */
  readonly #set: { set: InstanceType<typeof RE2.Set>; regexes: FailRegex[] } | null = null;
  readonly #usedns: UseDns;
  readonly #dnsCache: DnsCache | null;
  readonly #onResolved: ((matches: LogMatch[]) => void) | undefined;
  readonly #onDnsWarning: ((name: string, ips: readonly string[]) => void) | undefined;
  readonly #warned = new Set<string>();
  readonly #resolving = new Set<Promise<void>>();
  /** `ignorerdns`: the regex a real crawler's reverse DNS name matches, and its cache key. */
  readonly #rdns: { re: RE2; key: string } | null = null;

  constructor(definition: ResolvedFilterDefinition, options: LogFilterOptions, optionsWhere: string) {
    this.name = definition.name;
    this.description = definition.description;
    this.mode = definition.mode;
    this.failregex = definition.failregex.map((r) => r.source);
    this.ignoreregex = definition.ignoreregex.map((r) => r.source);
    this.#now = options.now ?? Date.now;
    this.#maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.#sessions = new SessionTable(definition.maxlines);
    this.#cutDateOnly = definition.dateCut === 'exact';
    const problems: string[] = [];
    this.#usedns = options.usedns ?? 'no';
    if (!['no', 'warn', 'yes'].includes(this.#usedns))
      problems.push(`${optionsWhere}usedns: expected no, warn or yes, got ${JSON.stringify(options.usedns)}`);
    if (definition.ignorerdns !== undefined) {
      try {
        this.#rdns = { re: compileRe2(definition.ignorerdns.source), key: definition.ignorerdns.source };
      } catch (error) {
        problems.push(re2Message(definition.ignorerdns, error));
      }
    }
    this.#dnsCache =
      this.#usedns === 'no' && this.#rdns === null
        ? null
        : options.dns instanceof DnsCache
          ? options.dns
          : new DnsCache(options.dns);
    this.#onResolved = options.onResolved;
    this.#onDnsWarning = options.onDnsWarning;

    const datepattern = options.datepattern ?? definition.datepattern?.source;
    this.#undatedIsMissed = datepattern === '{NONE}';
    this.#dates = null;
    try {
      this.#dates =
        datepattern === '{NONE}'
          ? null
          : createDateDetector({ datepattern, logtimezone: options.logtimezone, now: this.#now });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const fromFilter = options.datepattern === undefined ? definition.datepattern?.where : undefined;
      for (const problem of error.problems) {
        // Problems read `datepattern: ...` or `logtimezone: ...`; say where that key was set.
        problems.push(
          fromFilter !== undefined && problem.startsWith('datepattern:')
            ? `${fromFilter}${problem.slice('datepattern'.length)}`
            : `${optionsWhere}${problem}`,
        );
      }
    }

    const vars = definition.vars;
    const prefixTokens =
      definition.prefregex === undefined ? null : this.#expand(definition.prefregex, vars, problems);
    const failTokens = definition.failregex.map((regex) => this.#expand(regex, vars, problems));
    const prefixHasHost = prefixTokens !== null && hasHostGroup(prefixTokens);
    // Sessions cost a capture and a table update per match: only filters that need them (a
    // failure without a host, <F-NOFAIL>, <F-MLFFORGET>) keep their <F-MLFID> group.
    const needsSessions = failTokens.some(
      (tokens) =>
        tokens !== null &&
        (hasGroup(tokens, GROUP.nofail) ||
          hasGroup(tokens, GROUP.forget) ||
          (!hasHostGroup(tokens) && !prefixHasHost)),
    );
    this.#drop = needsSessions ? new Set() : new Set([GROUP.mlfid]);
    const prefix =
      prefixTokens === null || definition.prefregex === undefined
        ? null
        : this.#compilePrefix(definition.prefregex, prefixTokens, problems);
    this.#prefix = prefix;
    this.#prefixPrefilter = prefix?.prefilter ?? null;
    const prefixHasSession = prefixTokens !== null && hasGroup(prefixTokens, GROUP.mlfid);
    for (const regex of definition.ignoreregex) {
      const tokens = this.#expand(regex, vars, problems);
      if (tokens === null) continue;
      const { pattern } = positionalGroups(tokens);
      try {
        this.#ignores.push({
          re: compileRe2(pattern),
          js: jsTwin(pattern),
          prefilter: linePrefilter(render(tokens)),
        });
      } catch (error) {
        problems.push(re2Message(regex, error));
      }
    }
    definition.failregex.forEach((regex, index) => {
      const tokens = failTokens[index];
      if (tokens === null || tokens === undefined) return;
      const compiled = this.#compileFail(
        regex,
        tokens,
        index,
        prefix,
        prefixHasSession || prefixHasHost,
        problems,
      );
      if (compiled !== null) this.#regexes.push(compiled);
    });
    // One scan finds the failregexes whose key literal a line holds; most lines hold none.
    const keys = this.#regexes.map((regex) => regex.prefilter?.key ?? null);
    this.#keys = keys.length > 0 && keys.some((key) => key !== null) ? new KeyScanner(keys) : null;
    const inSet = this.#regexes.filter((regex) => regex.fullPattern !== null);
    if (inSet.length >= 2) {
      try {
        this.#set = { set: new RE2.Set(inSet.map((regex) => regex.fullPattern as string)), regexes: inSet };
        inSet.forEach((regex, i) => {
          regex.setIndex = i;
        });
      } catch {
        this.#set = null; // each regex still runs on its own
      }
    }
    if (definition.failregex.length === 0)
      problems.push(`${options.where ?? 'filter'}: failregex: the filter has no failregex`);
    if (problems.length > 0) throw new ConfigError(problems);
  }

  processLine(line: string): LineResult {
    try {
      return this.#process(line);
    } catch {
      // Whatever a line contains, it is data: a line the engine cannot handle is a missed line.
      return { kind: 'missed', matches: NO_MATCHES };
    }
  }

  reset(): void {
    this.#sessions.clear();
  }

  get usesSessions(): boolean {
    return this.#drop.size === 0;
  }

  sessionState(): SessionSnapshot {
    return this.#sessions.snapshot();
  }

  restoreSessions(state: SessionSnapshot): void {
    this.#sessions.restore(state);
  }

  async settled(): Promise<void> {
    while (this.#resolving.size > 0) await Promise.all(this.#resolving);
  }

  #process(line: string): LineResult {
    if (line.length > this.#maxLineLength) line = line.slice(0, this.#maxLineLength);
    let text = line;
    let timeMs: number;
    let dateFormat: string | undefined;
    const date = this.#dates === null ? null : this.#dates.find(line);
    // The failregexes whose keys the text holds, when found before the text is made.
    let keyed: number[] | null = null;
    if (date !== null) {
      // fail2ban's filters expect the text around the date as it was (` host sshd[1]: ...`),
      // brackets around it included (`- - [] "GET ...`: its filters match `\[\]`).
      const cut = this.#cutDateOnly ? cutExact(line, date, this.#cut) : stripCut(line, date, this.#cut);
      timeMs = date.timeMs;
      dateFormat = date.format;
      if (this.#keys !== null && this.#prefixPrefilter === null) {
        // Most lines hold no key: they are turned down without making their text (a copy).
        keyed = this.#keys.candidatesOfCut(line, cut, this.#candidateIndexes);
        if (keyed.length === 0) return this.#missedResult(dateFormat);
      }
      text = cutText(line, cut);
    } else {
      timeMs = this.#now();
    }
    let end = text.length;
    while (end > 0) {
      const code = text.charCodeAt(end - 1);
      if (code !== 32 && code !== 9 && code !== 13) break;
      end--;
    }
    if (end < text.length) text = text.slice(0, end);
    if (this.#prefixPrefilter !== null && !this.#prefixPrefilter.test(text))
      return this.#missedResult(dateFormat);

    let prefixMatch: Captures | null | undefined;
    let regexes: readonly FailRegex[] = this.#regexes;
    if (this.#keys !== null) {
      const indexes = keyed ?? this.#keys.candidates(text, this.#candidateIndexes);
      const candidates = this.#candidates;
      while (candidates.length !== 0) candidates.pop(); // cheaper than setting `length`
      let allInSet = true;
      let allTwinned = true;
      for (let i = 0; i < indexes.length; i++) {
        const regex = this.#regexes[indexes[i] as number] as FailRegex;
        // The other clauses are worth testing before an RE2 call, not before a twin (whose failure
        // costs about what two `includes` do).
        if (regex.fullJs === null && regex.prefilter !== null && !regex.prefilter.rest(text)) continue;
        candidates.push(regex);
        if (regex.setIndex < 0) allInSet = false;
        if (regex.fullJs === null) allTwinned = false;
      }
      if (candidates.length === 0) return this.#missedResult(dateFormat);
      regexes = candidates;
      if (candidates.length >= 2 && allInSet && !allTwinned && this.#set !== null) {
        // Two candidates or more that the set can judge, not all with a twin (each of which
        // costs less than one RE2 call): one call says which (if any) match.
        const hits = this.#set.set.match(text);
        if (hits.length === 0) return this.#missedResult(dateFormat);
        let firstHit = hits[0] as number;
        for (const hit of hits) if (hit < firstHit) firstHit = hit;
        regexes = [this.#set.regexes[firstHit] as FailRegex];
      }
    }
    for (const regex of regexes) {
      if (regexes === this.#regexes && !passes(text, regex.prefilter)) continue;
      let m: Captures | null;
      let pm: Captures | null = null;
      let slots: Slots;
      if (regex.full !== null) {
        const twin = usableTwin(regex.fullJs, text);
        if (twin !== null) {
          // V8's twin fills the captures, and fails, faster than any RE2 call (whose copy of the
          // line to UTF-8 alone costs more): ~0.3-1 µs against RE2's ~5 µs for a test.
          m = twin.exec(text);
        } else {
          // A regex that fails on most lines its literals let through (a closing line's regex on
          // every other closing line) is first tried without captures: RE2's DFA alone, about
          // half the cost of a match with captures.
          regex.tries++;
          if (regex.tries > 64 && regex.hits * 2 < regex.tries && !regex.full.test(text)) continue;
          m = wholeMatch(regex.full, text);
          if (m !== null) regex.hits++;
        }
        slots = regex.fullSlots as Slots;
      } else {
        if (this.#prefix !== null) {
          if (prefixMatch === undefined) {
            const twin = usableTwin(this.#prefix.js, text);
            prefixMatch = twin !== null ? twin.exec(text) : this.#prefix.re.exec(text);
          }
          if (prefixMatch === null) return this.#missedResult(dateFormat);
          pm = prefixMatch;
          const content = prefixMatch[this.#prefix.slots.content] ?? '';
          const twin = usableTwin(regex.ownJs, content);
          m = twin !== null ? twin.exec(content) : regex.own.exec(content);
        } else {
          const twin = usableTwin(regex.ownJs, text);
          m = twin !== null ? twin.exec(text) : regex.own.exec(text);
        }
        slots = regex.ownSlots;
      }
      if (m === null) continue;
      return this.#matched(regex.index, m, slots, pm, text, timeMs, dateFormat, regex.noSession);
    }
    return this.#missedResult(dateFormat);
  }

  /**
   * normalizeIp with a small cache: attackers repeat, and IPv6 formatting is slow. The address
   * returned, and the cache's key, share nothing with the line (see detach).
   */
  #normalize(text: string): string | undefined {
    // Most hosts are written as normalizeIp would write them: nothing to do, no cache churn.
    if (isCanonicalIPv4(text) || isCanonicalIPv6(text)) return detach(text);
    let ip = this.#hosts.get(text);
    if (ip === undefined) {
      ip = normalizeIp(text) ?? '';
      if (this.#hosts.size >= HOST_CACHE_SIZE) this.#hosts.clear();
      this.#hosts.set(detach(text), ip);
    }
    return ip === '' ? undefined : ip;
  }

  /** Missed lines are most lines: their (read-only) results are shared, one per date format. */
  #missedResult(dateFormat: string | undefined): LineResult {
    // A log keeps its date format: the last one answers without a map lookup.
    if (this.#lastMissed !== undefined && this.#lastMissed.dateFormat === dateFormat) return this.#lastMissed;
    let result = this.#missedResults.get(dateFormat);
    if (result === undefined) {
      result = Object.freeze(
        dateFormat !== undefined || this.#undatedIsMissed
          ? { kind: 'missed' as const, matches: NO_MATCHES, dateFormat }
          : { kind: 'no-date' as const, matches: NO_MATCHES },
      );
      this.#missedResults.set(dateFormat, result);
    }
    this.#lastMissed = result;
    return result;
  }

  #matched(
    regexIndex: number,
    m: Captures,
    slots: Slots,
    pm: Captures | null,
    text: string,
    timeMs: number,
    dateFormat: string | undefined,
    noSession = false,
  ): LineResult {
    const prefixSlots = this.#prefix?.slots;
    const pick = (own: readonly number[], pre: readonly number[] | undefined): string | undefined =>
      first(m, own) ?? (pm === null || pre === undefined ? undefined : first(pm, pre));
    const nofail = pick(slots.nofail, prefixSlots?.nofail) !== undefined;
    const forget = pick(slots.forget, prefixSlots?.forget) !== undefined;
    const mlfid = noSession ? undefined : pick(slots.mlfid, prefixSlots?.mlfid);

    if (this.#ignores.length > 0 && !nofail) {
      const content =
        slots.content > 0
          ? (m[slots.content] ?? text)
          : pm !== null && prefixSlots !== undefined
            ? (pm[prefixSlots.content] ?? text)
            : text;
      for (let i = 0; i < this.#ignores.length; i++) {
        const ignore = this.#ignores[i] as IgnoreRegex;
        if (!passes(content, ignore.prefilter)) continue;
        const twin = usableTwin(ignore.js, content);
        if (twin !== null ? twin.test(content) : ignore.re.test(content)) {
          return { kind: 'ignored', matches: NO_MATCHES, dateFormat, regexIndex, ignoreIndex: i };
        }
      }
    }

    const fields: Record<string, string> = {};
    if (pm !== null && prefixSlots !== undefined) collectFields(pm, prefixSlots, fields);
    collectFields(m, slots, fields);
    let ip: string | undefined;
    let badHost: string | undefined;
    const hostText = pick(slots.host, prefixSlots?.host);
    if (hostText !== undefined) {
      ip = this.#normalize(hostText);
      if (ip === undefined) badHost = detach(hostText);
    } else {
      const cidrText = pick(slots.cidr, prefixSlots?.cidr);
      if (cidrText !== undefined) {
        const cidr = parseCidr(cidrText);
        const address = normalizeIp(cidrText.slice(0, cidrText.indexOf('/')));
        if (cidr === null || address === null) badHost = detach(cidrText);
        else {
          ip = address;
          fields.cidr = cidr.text;
        }
      }
    }

    // A name in place of the address (usedns): the failure is counted when it resolves; a
    // session learns no address from a name.
    if (!nofail && ip === undefined && badHost !== undefined && this.#usedns !== 'no' && isDnsName(badHost))
      return this.#byName(badHost, timeMs, fields, regexIndex, dateFormat);
    if (mlfid === undefined) {
      if (nofail) return { kind: 'info', matches: NO_MATCHES, dateFormat, regexIndex };
      if (ip !== undefined && this.#rdns !== null)
        return this.#checkRdns(ip, timeMs, fields, regexIndex, dateFormat);
      if (ip === undefined) return { kind: 'missed', matches: NO_MATCHES, dateFormat, regexIndex, badHost };
      return { kind: 'match', matches: [{ ip, timeMs, fields, regexIndex }], dateFormat, regexIndex };
    }
    return this.#sessionLine(mlfid, { ip, fields, nofail, forget, timeMs, regexIndex, dateFormat, badHost });
  }

  /** `usedns`: a failure whose host is a name. Cached: matched now; else looked up in the background. */
  #byName(
    name: string,
    timeMs: number,
    fields: Record<string, string>,
    regexIndex: number,
    dateFormat: string | undefined,
  ): LineResult {
    const cache = this.#dnsCache as DnsCache;
    const toMatches = (ips: readonly string[]): LogMatch[] =>
      ips.map((ip) => ({ ip, timeMs, fields: { ...fields, dns: name }, regexIndex }));
    const known = cache.cached(name);
    if (known !== undefined) {
      if (known.length === 0)
        return { kind: 'missed', matches: NO_MATCHES, dateFormat, regexIndex, badHost: name };
      this.#warn(name, known);
      return { kind: 'match', matches: toMatches(known), dateFormat, regexIndex };
    }
    const done: Promise<void> = cache.resolve(name).then((ips) => {
      this.#resolving.delete(done);
      if (ips.length === 0) return;
      this.#warn(name, ips);
      try {
        this.#onResolved?.(toMatches(ips));
      } catch {
        // The receiver's problem; a lookup never throws into the event loop.
      }
    });
    this.#resolving.add(done);
    return { kind: 'info', matches: NO_MATCHES, dateFormat, regexIndex, resolving: name };
  }

  /** `ignorerdns`: a failure counts unless the client is what its reverse DNS name says it is. */
  #checkRdns(
    ip: string,
    timeMs: number,
    fields: Record<string, string>,
    regexIndex: number,
    dateFormat: string | undefined,
  ): LineResult {
    const cache = this.#dnsCache as DnsCache;
    const { re, key } = this.#rdns as { re: RE2; key: string };
    const match: LogMatch = { ip, timeMs, fields, regexIndex };
    const known = cache.verified(ip, key);
    if (known === true) return { kind: 'ignored', matches: NO_MATCHES, dateFormat, regexIndex };
    if (known === false) return { kind: 'match', matches: [match], dateFormat, regexIndex };
    const done: Promise<void> = cache
      .verify(ip, key, (name) => re.test(name))
      .then((real) => {
        this.#resolving.delete(done);
        if (real) return;
        try {
          this.#onResolved?.([match]);
        } catch {
          // The receiver's problem.
        }
      });
    this.#resolving.add(done);
    return { kind: 'info', matches: NO_MATCHES, dateFormat, regexIndex, resolving: ip };
  }

  #warn(name: string, ips: readonly string[]): void {
    if (this.#usedns !== 'warn') return;
    const key = name.toLowerCase();
    if (this.#warned.has(key)) return;
    if (this.#warned.size >= 10_000) this.#warned.clear();
    this.#warned.add(key);
    this.#onDnsWarning?.(name, ips);
  }

  #sessionLine(
    id: string,
    line: {
      ip: string | undefined;
      fields: Record<string, string>;
      nofail: boolean;
      forget: boolean;
      timeMs: number;
      regexIndex: number;
      dateFormat: string | undefined;
      badHost: string | undefined;
    },
  ): LineResult {
    const session: Session = this.#sessions.touch(id, line.timeMs);
    if (line.ip !== undefined) session.ip = line.ip;
    for (const key in line.fields)
      if (line.fields[key] !== '') session.fields[key] = line.fields[key] as string;
    const matches: LogMatch[] = [];
    const ip = session.ip;
    if (ip !== undefined && session.pending.length > 0) {
      for (const waiting of session.pending) {
        matches.push({
          ip,
          timeMs: waiting.timeMs,
          fields: { ...session.fields, ...waiting.fields },
          regexIndex: waiting.regexIndex,
        });
      }
      session.pending.length = 0;
    }
    if (!line.nofail) {
      const fields = { ...session.fields, ...line.fields };
      if (ip !== undefined) matches.push({ ip, timeMs: line.timeMs, fields, regexIndex: line.regexIndex });
      else this.#sessions.hold(session, { timeMs: line.timeMs, fields, regexIndex: line.regexIndex });
    }
    if (line.forget) this.#sessions.forget(id);
    const base = { dateFormat: line.dateFormat, regexIndex: line.regexIndex };
    if (matches.length > 0) return { kind: 'match', matches, ...base };
    if (line.badHost !== undefined && !line.nofail)
      return { kind: 'missed', matches: NO_MATCHES, ...base, badHost: line.badHost };
    return { kind: 'info', matches: NO_MATCHES, ...base };
  }

  #expand(regex: RegexSource, vars: Readonly<Record<string, string>>, problems: string[]): Token[] | null {
    let expanded: string;
    try {
      expanded = expandTags(regex.source, vars);
    } catch (error) {
      if (!(error instanceof TagError)) throw error;
      problems.push(`${regex.where}: ${error.message}`);
      return null;
    }
    const tokens = tokenize(expanded);
    try {
      // RE2 judges the pattern as written (tags expanded; group names dropped, since several
      // groups may share one), so its reason is about the user's text.
      compileRe2(positionalGroups(tokens).pattern);
    } catch (error) {
      problems.push(re2Message(regex, error));
      return null;
    }
    const reserved = tokens.find(
      (t) => t.kind === 'open' && t.name?.startsWith('__') && !Object.values(GROUP).includes(t.name as never),
    );
    if (reserved !== undefined) {
      problems.push(
        `${regex.where}: group names starting with "__" are reserved, got ${JSON.stringify(reserved.raw)}`,
      );
      return null;
    }
    return tokens;
  }

  #compilePrefix(regex: RegexSource, tokens: Token[], problems: string[]): Prefix | null {
    const contentOpens = tokens.filter((t) => t.kind === 'open' && t.name === GROUP.content).length;
    if (contentOpens !== 1) {
      problems.push(
        `${regex.where}: needs exactly one <F-CONTENT>...</F-CONTENT> (the part failregex sees), found ${contentOpens}`,
      );
      return null;
    }
    const { pattern, groups } = positionalGroups(tokens, this.#drop);
    return {
      re: compileRe2(pattern),
      js: jsTwin(pattern),
      slots: slotsOf(groups),
      prefilter: linePrefilter(render(tokens)),
      compose: composablePrefix(tokens),
    };
  }

  #compileFail(
    regex: RegexSource,
    tokens: Token[],
    index: number,
    prefix: Prefix | null,
    hostElsewhere: boolean,
    problems: string[],
  ): FailRegex | null {
    const hasSession = hasGroup(tokens, GROUP.mlfid);
    const nofail = hasGroup(tokens, GROUP.nofail);
    const noSession = hasHostGroup(tokens) && !nofail && !hasSession && !hasGroup(tokens, GROUP.forget);
    const drop = noSession ? new Set([...this.#drop, GROUP.mlfid]) : this.#drop;
    if (!hasHostGroup(tokens) && !hostElsewhere && !hasSession && !nofail) {
      problems.push(
        `${regex.where}: has no <HOST> (or <ADDR>, <IP4>, <IP6>, <CIDR>, (?P<host>...)), and neither has the prefregex; only a filter with <F-MLFID> sessions may leave it out`,
      );
      return null;
    }
    const own = positionalGroups(tokens, drop);
    const body = composableBody(tokens);
    let full: RE2 | null = null;
    let fullPattern: string | null = null;
    let fullSlots: Slots | null = null;
    if (body !== null && (prefix === null || prefix.compose !== null)) {
      // The content is captured only when ignoreregexes need it: fewer captures, cheaper matches.
      const contentGroup = this.#ignores.length > 0 ? `(?P<${GROUP.content}>${body})` : `(?:${body})`;
      const composed =
        prefix === null
          ? `^${contentGroup}$`
          : `${(prefix.compose as { head: string }).head}${contentGroup}${(prefix.compose as { tail: string }).tail}`;
      const rewritten = positionalGroups(tokenize(composed), drop);
      try {
        full = compileRe2(rewritten.pattern);
        fullPattern = rewritten.pattern;
        fullSlots = slotsOf(rewritten.groups);
      } catch {
        full = null; // fall back to two steps; the parts compiled on their own
      }
    }
    return {
      index,
      prefilter: linePrefilter(render(tokens)),
      full,
      fullPattern,
      setIndex: -1,
      tries: 0,
      hits: 0,
      noSession,
      fullSlots,
      fullJs: fullPattern === null ? null : jsTwin(fullPattern),
      own: compileRe2(own.pattern),
      ownJs: jsTwin(own.pattern),
      ownSlots: slotsOf(own.groups),
    };
  }
}

function re2Message(regex: RegexSource, error: unknown): string {
  if (error instanceof Re2CompileError) {
    return `${regex.where}: RE2 cannot compile ${JSON.stringify(regex.source)}: ${error.reason}`;
  }
  throw error;
}

/** Capture `i` of a match at index `i` (`undefined`: the group took no part). */
type Captures = ArrayLike<string | undefined>;

/**
 * Matches a `^...$` program against the whole text. `split` returns `['', ...captures, '']` for a
 * match and `[text]` otherwise, with `undefined` for groups that took no part, exactly as `exec`;
 * it is used because node-re2 builds its result about 20% faster than `exec`'s.
 */
function wholeMatch(re: RE2, text: string): Captures | null {
  if (text === '') return re.exec(text);
  const parts = re.split(text) as (string | undefined)[];
  return parts.length === 1 ? null : parts;
}

/** A dotted quad written as normalizeIp writes it (no leading zeros, each part <= 255). */
function isCanonicalIPv4(text: string): boolean {
  const length = text.length;
  if (length < 7 || length > 15) return false;
  let parts = 0;
  let i = 0;
  while (i < length) {
    const from = i;
    let value = 0;
    while (i < length) {
      const code = text.charCodeAt(i);
      if (code < 48 || code > 57) break;
      value = value * 10 + code - 48;
      i++;
    }
    const digits = i - from;
    if (digits === 0 || digits > 3 || value > 255 || (digits > 1 && text.charCodeAt(from) === 48))
      return false;
    parts++;
    if (i === length) break;
    if (text.charCodeAt(i) !== 46 || parts === 4) return false;
    i++;
    if (i === length) return false;
  }
  return parts === 4;
}

/**
 * The V8 twin to run on `text`, or `null` for RE2: none was made, or the line holds a surrogate
 * pair that a part of the twin could match half of (see js-twin.ts).
 */
function usableTwin(twin: JsTwin | null, text: string): RegExp | null {
  if (twin === null || (twin.wide && hasSurrogate(text))) return null;
  return twin.re;
}

function passes(text: string, prefilter: LinePrefilter | null): boolean {
  return prefilter === null || prefilter.test(text);
}

function first(m: Captures, indexes: readonly number[]): string | undefined {
  for (let i = 0; i < indexes.length; i++) {
    const value = m[indexes[i] as number];
    if (value !== undefined) return value;
  }
  return undefined;
}

/** The cut of `dateCut: exact` (fail2ban's filters): the date's text only, its brackets stay (`[]`). */
function cutExact(line: string, date: { start: number; end: number }, into: DateCut): DateCut {
  const bracketed = date.end - date.start >= 2 && line[date.start] === '[' && line[date.end - 1] === ']';
  into.before = bracketed ? date.start + 1 : date.start;
  into.after = bracketed ? date.end - 1 : date.end;
  into.sep = '';
  return into;
}

/** The named groups' values, detached from the line: a jail or a session may keep them. */
function collectFields(m: Captures, slots: Slots, into: Record<string, string>): void {
  for (const [name, indexes] of slots.fields) {
    const value = first(m, indexes);
    if (value !== undefined) into[name] = detach(value);
  }
}

function slotsOf(groups: GroupIndex): Slots {
  const get = (name: string) => groups.byName.get(name) ?? [];
  const fields: [string, readonly number[]][] = [];
  for (const [name, indexes] of groups.byName)
    if (!name.startsWith('__') && name !== 'host') fields.push([name, indexes]);
  return {
    fields,
    host: [...get(GROUP.host), ...get('host')].sort((a, b) => a - b),
    cidr: get(GROUP.cidr),
    mlfid: get(GROUP.mlfid),
    nofail: get(GROUP.nofail),
    forget: get(GROUP.forget),
    content: get(GROUP.content)[0] ?? 0,
  };
}

function hasGroup(tokens: readonly Token[], name: string): boolean {
  return tokens.some((t) => t.kind === 'open' && t.name === name);
}

function isEdgeAnchor(token: Token | undefined, raw: '^' | '$'): boolean {
  return token !== undefined && token.kind === 'assert' && token.raw === raw;
}

function hasInnerAnchor(tokens: readonly Token[]): boolean {
  return tokens.some(
    (t) => t.kind === 'assert' && (t.raw === '^' || t.raw === '$' || t.raw === '\\A' || t.raw === '\\z'),
  );
}

/**
 * A failregex as a piece to put inside the content group, or `null` when its shape does not allow
 * it (an anchor or a flags group in the middle, ...). Each top-level alternative keeps its meaning:
 * anchored where it has `^`/`$`, searched (`.*?` / `.*` padding) where it has not.
 */
function composableBody(tokens: readonly Token[]): string | null {
  const parts: string[] = [];
  for (const alternative of splitTopLevel(tokens)) {
    let body = alternative;
    const start = isEdgeAnchor(body[0], '^');
    if (start) body = body.slice(1);
    const end = isEdgeAnchor(body[body.length - 1], '$');
    if (end) body = body.slice(0, -1);
    if (hasInnerAnchor(body) || body.some((t) => t.kind === 'flags')) return null;
    parts.push(`${start ? '' : '.*?'}${render(body)}${end ? '' : '.*'}`);
  }
  return parts.length === 1 ? (parts[0] as string) : `(?:${parts.join('|')})`;
}

/**
 * The text before and after the content group, to compose with a failregex, or `null` unless the
 * prefregex is one sequence with `<F-CONTENT>` at the top level holding `.+`/`.*` (any text).
 */
function composablePrefix(tokens: readonly Token[]): { head: string; tail: string } | null {
  if (splitTopLevel(tokens).length !== 1) return null;
  const open = tokens.findIndex((t) => t.kind === 'open' && t.name === GROUP.content);
  let depth = 0;
  for (let i = 0; i < open; i++) {
    const kind = (tokens[i] as Token).kind;
    if (kind === 'open') depth++;
    else if (kind === 'close') depth--;
    else if (kind === 'flags' && depth === 0) return null;
  }
  if (depth !== 0) return null;
  const close = matchingClose(tokens, open);
  const inner = render(tokens.slice(open + 1, close));
  if (!['.+', '.*', '.+?', '.*?'].includes(inner)) return null;
  if (tokens[close + 1]?.kind === 'quant') return null;
  let head = tokens.slice(0, open);
  let tail = tokens.slice(close + 1);
  const start = isEdgeAnchor(head[0], '^');
  if (start) head = head.slice(1);
  const end = isEdgeAnchor(tail[tail.length - 1], '$');
  if (end) tail = tail.slice(0, -1);
  if (hasInnerAnchor(head) || hasInnerAnchor(tail) || tail.some((t) => t.kind === 'flags')) return null;
  return { head: `^${start ? '' : '.*?'}${render(head)}`, tail: `${render(tail)}${end ? '' : '.*'}$` };
}
