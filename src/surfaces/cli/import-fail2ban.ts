import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatDuration } from '../../core/duration.js';
import { ConfigError } from '../../core/errors.js';
import { checkCidr } from '../../core/ip.js';
import {
  configFilesOf,
  Fail2banConfig,
  InterpolationError,
} from '../../detection/filters/fail2ban/config-set.js';
import { translateDatePattern } from '../../detection/filters/fail2ban/date-pattern.js';
import { fail2banDir } from '../../detection/filters/fail2ban/filter-file.js';
import {
  loadFail2banJournalmatch,
  loadFail2banReference,
  parseFilterOption,
} from '../../detection/filters/fail2ban/reference.js';
import {
  bundledLogFilters,
  resolveFilterDefinition,
} from '../../detection/filters/regex/filter-definition.js';
import { loadLogFilter } from '../../detection/filters/regex/log-filter.js';

/**
 * `portcullis import fail2ban [DIR] [-o FILE]`: turns a fail2ban setup (`jail.conf`,
 * `jail.d/*.conf`, `jail.local`, `jail.d/*.local`, merged as fail2ban merges them, `[DEFAULT]`
 * inherited, `%(x)s` interpolated) into a commented portcullis.yaml. Enabled jails only. Filters
 * stay fail2ban's, read in place at every start (`fail2ban:NAME`); what cannot be carried over is
 * listed at the top of the file, one comment line each, and printed on stderr.
 */

export interface ImportOptions {
  env?: NodeJS.ProcessEnv;
  /** Where `/etc/services` is, for port names. */
  servicesFile?: string;
}

export interface ImportResult {
  /** The YAML text. */
  yaml: string;
  /** Jails written, in order. */
  jails: string[];
  /** What was not carried over, `jail: what`, one line each. */
  notCarried: string[];
}

/** The jail options that portcullis takes over; others are noted when set in a jail. */
const NOTED_OPTIONS = ['failregex', 'ignoreregex', 'ignorecommand', 'bantime.formula', 'prefregex'];

export function importFail2ban(dir: string, options: ImportOptions = {}): ImportResult {
  const root = resolve(dir);
  const files = configFilesOf(root, 'jail');
  if (files.length === 0) throw new ConfigError([`${root}: no jail.conf or jail.local to import`]);
  const config = Fail2banConfig.read(files);
  const services = readServices(options.servicesFile ?? '/etc/services');
  const sameDir = root === resolve(fail2banDir(options.env));
  const notCarried: string[] = [];
  const jailTexts: string[] = [];
  const names: string[] = [];
  for (const name of config.sections.keys()) {
    if (name === 'INCLUDES' || name.startsWith('KNOWN/')) continue;
    const get = (key: string): string | undefined => {
      try {
        return config.get(name, key);
      } catch (error) {
        if (!(error instanceof InterpolationError)) throw error;
        notCarried.push(`${name}: ${key}: ${error.message}`);
        return undefined;
      }
    };
    if (!isTrue(get('enabled'))) continue;
    const notes: string[] = [];
    const jail = importJail(name, get, { root, sameDir, services, notes, env: options.env });
    for (const key of NOTED_OPTIONS) {
      if (config.sections.get(name)?.has(key))
        notes.push(`${key} set in the jail is not carried over (put it in a filter file)`);
    }
    notCarried.push(...notes.map((note) => `${name}: ${note}`));
    names.push(name);
    jailTexts.push(jail);
  }
  const header = [
    `# portcullis.yaml imported from ${root} by \`portcullis import fail2ban\`.`,
    `# Read: ${config.files.map((file) => file.slice(root.length + 1)).join(', ')}`,
    `# Filters are fail2ban's own files, read in place at every start (fail2ban:NAME).`,
    ...(notCarried.length === 0
      ? ['# Everything enabled was carried over.']
      : ['# Not carried over:', ...notCarried.map((line) => `#   ${oneLine(line)}`)]),
    '',
    'store:',
    '  sqlite: ./portcullis.db',
    '',
    names.length === 0 ? 'jails: {}' : 'jails:',
  ];
  return { yaml: `${[...header, ...jailTexts].join('\n')}\n`, jails: names, notCarried };
}

interface JailContext {
  root: string;
  sameDir: boolean;
  services: Map<string, number>;
  notes: string[];
  env: NodeJS.ProcessEnv | undefined;
}

function importJail(name: string, get: (key: string) => string | undefined, ctx: JailContext): string {
  const { notes } = ctx;
  const lines: string[] = [`  ${key(name)}:`];
  const put = (k: string, value: unknown, comment?: string) =>
    lines.push(`    ${k}: ${JSON.stringify(value)}${comment === undefined ? '' : `  # ${oneLine(comment)}`}`);

  const backend = (get('backend') ?? 'auto').trim();
  const journal = backend.startsWith('systemd');
  const filterText = (get('filter') ?? name).split('\n')[0]?.trim() ?? name;
  let filterName = name;
  let params: Record<string, string> = {};
  try {
    const parsed = parseFilterOption(filterText);
    filterName = parsed.name;
    params = parsed.params;
  } catch (error) {
    notes.push(`filter ${JSON.stringify(filterText)}: ${(error as Error).message}`);
  }
  const filter = chooseFilter(name, filterName, params, journal, ctx);
  lines.push(`    # fail2ban [${name}]: filter = ${oneLine(filterText)}; backend = ${backend}`);
  if (filter.disabled) {
    put('enabled', false, 'its filter cannot run on portcullis; see the notes at the top');
  }

  if (journal) {
    const own = get('journalmatch');
    const matches = own !== undefined && own.trim() !== '' ? journalWords(own) : filter.journalmatch;
    const argv = ['journalctl', '-f', '-o', 'json', ...matches];
    put('source', { command: argv }, "backend = systemd: the journal, with the filter's journalmatch");
    if (matches.length === 0)
      notes.push(
        'WARNING backend = systemd but no journalmatch: the whole journal is read, so any local user can write lines the filter matches (logger -t NAME); add journalmatch to the jail',
      );
  } else {
    const paths = (get('logpath') ?? '')
      .split('\n')
      .map((line) => line.trim().replace(/\s+(tail|head)$/, ''))
      .filter((line) => line !== '');
    if (paths.length === 0) {
      notes.push('no logpath: the jail is written disabled');
      put('enabled', false, 'no logpath');
      put('source', { log: [`/var/log/${name}.log`] });
    } else put('source', { log: paths });
  }
  put('filter', filter.spec, filter.comment);
  if (filter.mode !== undefined) put('mode', filter.mode, "fail2ban's filter mode, on the bundled filter");

  const maxretry = get('maxretry');
  if (maxretry !== undefined) {
    const n = Number(maxretry);
    if (Number.isInteger(n) && n >= 1) put('maxretry', n);
    else notes.push(`maxretry ${JSON.stringify(maxretry)}: not a whole number`);
  }
  for (const [f2b, ours, permanent] of [
    ['findtime', 'findtime', false],
    ['bantime', 'bantime', true],
  ] as const) {
    const value = get(f2b);
    if (value === undefined) continue;
    const duration = fail2banTime(value, permanent);
    if (duration === undefined) notes.push(`${f2b} ${JSON.stringify(value)}: not a fail2ban time`);
    else put(ours, duration);
  }
  const increment = importIncrement(get, notes);
  if (increment !== undefined) put('bantime_increment', increment);

  const ignore = get('ignoreip');
  if (ignore !== undefined && ignore.trim() !== '') {
    const kept: string[] = [];
    for (const entry of ignore.split(/[\s,]+/).filter((e) => e !== '')) {
      if (checkCidr(entry).ok) kept.push(entry);
      else notes.push(`ignoreip ${entry}: not an address or CIDR range (host names are not resolved)`);
    }
    if (kept.length > 0) put('ignoreip', kept);
  }
  const ignoreself = get('ignoreself');
  if (ignoreself !== undefined) put('ignoreself', isTrue(ignoreself));
  const datepattern = get('datepattern');
  if (datepattern !== undefined && datepattern.trim() !== '' && !journal) {
    const date = translateDatePattern(datepattern);
    if (date.pattern !== undefined) put('datepattern', date.pattern);
    if (date.note !== undefined) notes.push(date.note);
  }
  const zone = get('logtimezone');
  if (zone !== undefined && zone.trim() !== '') put('logtimezone', zone.trim());
  const usedns = get('usedns');
  if (usedns === 'yes') notes.push('usedns = yes: host names in log lines are not resolved');

  const actions = importActions(get, ctx);
  put('actions', actions);
  return lines.join('\n');
}

interface FilterChoice {
  spec: unknown;
  comment?: string;
  /** The jail's `mode:` (a bundled filter's mode, from fail2ban's `filter = name[mode=...]`). */
  mode?: string;
  journalmatch: string[];
  disabled: boolean;
}

/**
 * The fail2ban filter read in place when portcullis can run it; with `unsupported: skip` when only
 * some failregexes cannot run (each noted); else a bundled twin, or the jail written disabled.
 */
function chooseFilter(
  jail: string,
  filterName: string,
  params: Record<string, string>,
  journal: boolean,
  ctx: JailContext,
): FilterChoice {
  const base: Record<string, unknown> = {
    fail2ban: filterName,
    ...(params.mode === undefined ? {} : { mode: params.mode }),
  };
  const { mode: _mode, ...rest } = params;
  if (Object.keys(rest).length > 0) base.params = rest;
  if (!ctx.sameDir) base.fail2ban_dir = ctx.root;
  if (journal) base.logtype = 'journal';
  const attempt = (spec: Record<string, unknown>) => {
    const read = loadFail2banReference(spec, { where: `jails.${jail}.filter` });
    // Compiles every regex, as the config loader will.
    loadLogFilter(spec);
    return read;
  };
  const short = (): unknown => {
    if (!ctx.sameDir || journal || base.params !== undefined) return base;
    const options = Object.entries(params)
      .map(([k, v]) => `${k}=${/[,\]"']/.test(v) ? JSON.stringify(v) : v}`)
      .join(', ');
    return `fail2ban:${filterName}${options === '' ? '' : `[${options}]`}`;
  };
  let firstProblem = '';
  try {
    const read = attempt(base);
    for (const note of read.notes) ctx.notes.push(`filter ${filterName}: ${note}`);
    return {
      spec: short(),
      journalmatch: flatJournalmatch(read.journalmatch),
      disabled: false,
    };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    firstProblem = error.problems[0] ?? '';
  }
  const twin = bundledLogFilters().includes(filterName);
  const reason = firstProblem.replace(/^.*?cannot run on RE2: /, '');
  // The filter's journalmatch holds even when its regexes cannot run: without it the whole
  // journal is read, and any local user can write "sshd" lines into it (logger -t sshd).
  let journalmatch: string[] = [];
  try {
    journalmatch = flatJournalmatch(loadFail2banJournalmatch(base, { where: `jails.${jail}.filter` }));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  if (twin) {
    // Leaving out some of fail2ban's failregexes would miss what they catch; the twin catches it.
    ctx.notes.push(
      `filter ${filterName}: fail2ban's cannot run on RE2 (${reason}); portcullis's bundled ${filterName} is used`,
    );
    const choice: FilterChoice = {
      spec: filterName,
      comment: `portcullis's bundled ${filterName}; fail2ban's own would be { fail2ban: ${filterName}, unsupported: skip }`,
      journalmatch,
      disabled: false,
    };
    const { mode, ...others } = params;
    if (mode !== undefined) {
      const modes = resolveFilterDefinition(filterName, undefined).modes;
      if (modes.includes(mode)) choice.mode = mode;
      else
        ctx.notes.push(
          `WARNING filter ${filterName}[mode=${mode}]: portcullis's bundled ${filterName} has no mode ${JSON.stringify(mode)} (${modes.length === 0 ? 'it has no modes' : `modes: ${modes.join(', ')}`}); it runs in its default mode: check that it catches what you expect`,
        );
    }
    const other = Object.entries(others).filter(([k]) => k !== 'logtype');
    if (other.length > 0)
      ctx.notes.push(
        `WARNING filter ${filterName}: the parameters ${other.map(([k, v]) => `${k}=${v}`).join(', ')} are not carried over (portcullis's bundled ${filterName} takes none): check that it catches what you expect`,
      );
    return choice;
  }
  try {
    const skip = { ...base, unsupported: 'skip' };
    const read = attempt(skip);
    for (const note of read.notes) ctx.notes.push(`filter ${filterName}: ${note}`);
    return {
      spec: skip,
      comment: `${read.refused.length} failregex(es) RE2 cannot run are left out; see the notes at the top`,
      journalmatch: flatJournalmatch(read.journalmatch),
      disabled: false,
    };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  ctx.notes.push(`filter ${filterName}: cannot run on RE2: ${reason}`);
  return { spec: base, journalmatch, disabled: true };
}

/** journalmatch lines as one journalctl argument list (`+` between lines: "or"). */
function flatJournalmatch(lines: readonly (readonly string[])[]): string[] {
  return lines.flatMap((m, i) => (i === 0 ? [...m] : ['+', ...m]));
}

function importIncrement(
  get: (key: string) => string | undefined,
  notes: string[],
): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  const enabled = get('bantime.increment');
  if (enabled !== undefined) out.enabled = isTrue(enabled);
  const factor = get('bantime.factor');
  if (factor !== undefined) {
    const n = Number(factor);
    if (n > 0) out.factor = n;
    else notes.push(`bantime.factor ${JSON.stringify(factor)}: not a number above 0`);
  }
  for (const [f2b, ours] of [
    ['bantime.maxtime', 'maxtime'],
    ['bantime.rndtime', 'rndtime'],
  ] as const) {
    const value = get(f2b);
    if (value === undefined || value.trim() === '') continue;
    const duration = fail2banTime(value, false);
    if (duration === undefined || (ours === 'maxtime' && duration === '0s'))
      notes.push(`${f2b} ${JSON.stringify(value)}: not a fail2ban time`);
    else out[ours] = duration;
  }
  const multipliers = get('bantime.multipliers');
  if (multipliers !== undefined && multipliers.trim() !== '') {
    const list = multipliers.trim().split(/\s+/).map(Number);
    if (list.every((n) => n > 0)) out.multipliers = list;
    else notes.push(`bantime.multipliers ${JSON.stringify(multipliers)}: not numbers above 0`);
  }
  const overall = get('bantime.overalljails');
  if (overall !== undefined) out.overalljails = isTrue(overall);
  return Object.keys(out).length === 0 ? undefined : out;
}

const FIREWALL = /^(iptables|ip6tables|nftables|firewallcmd|shorewall|ufw|pf|ipfw|npf|route|xarf|ipset)/;
const MAIL = /^(sendmail|mail|smtp|complain)/;

/** fail2ban actions → portcullis action kinds where the meaning is the same. */
function importActions(get: (key: string) => string | undefined, ctx: JailContext): unknown[] {
  const out: unknown[] = [];
  const text = get('action') ?? '';
  const port = get('port') ?? '';
  const protocol = (get('protocol') ?? 'tcp').trim();
  let firewall = false;
  for (const line of splitActions(text)) {
    let action: { name: string; params: Record<string, string> };
    try {
      action = parseFilterOption(line);
    } catch (error) {
      ctx.notes.push(`action ${JSON.stringify(line)}: ${(error as Error).message}`);
      continue;
    }
    const { name, params } = action;
    if (name === '' || /^%\(|^</.test(name)) continue;
    if (FIREWALL.test(name)) {
      if (firewall) {
        ctx.notes.push(`action ${name}: a second firewall action (one nftables action covers the jail)`);
        continue;
      }
      firewall = true;
      const allPorts = /allports/.test(name) || params.type === 'allports';
      const ports = allPorts ? undefined : portsOf(params.port ?? port, ctx);
      const proto = (params.protocol ?? protocol).toLowerCase();
      const options: Record<string, unknown> = {};
      if (ports !== undefined && ports.length > 0) options.ports = ports;
      if (proto === 'udp' || (proto === 'tcp' && options.ports !== undefined)) options.protocol = proto;
      else if (proto !== 'tcp' && proto !== 'all')
        ctx.notes.push(`action ${name}: protocol ${proto}: only tcp and udp are carried over`);
      if (name !== 'nftables' && !name.startsWith('nftables-'))
        ctx.notes.push(`action ${name}: carried over as portcullis's nftables action`);
      out.push(Object.keys(options).length === 0 ? 'nftables' : { nftables: options });
    } else if (MAIL.test(name)) {
      const to = params.dest ?? get('destemail');
      if (to === undefined || !/^[^\s@<>",;]+@[^\s@<>",;]+$/.test(to)) {
        ctx.notes.push(`action ${name}: no usable destemail`);
        continue;
      }
      if (/whois|lines/.test(name))
        ctx.notes.push(`action ${name}: whois lookups and log lines are not added to the mail`);
      out.push({ email: { to } });
    } else if (name === 'hostsdeny') {
      out.push('hostsdeny');
    } else {
      ctx.notes.push(`action ${name}: no portcullis equivalent`);
    }
  }
  return out;
}

/** Action lines; fail2ban also allows several on one line, separated by whitespace after `]`. */
function splitActions(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let rest = line.trim();
    while (rest !== '') {
      const m = /^[^\s[]+(?:\[(?:"[^"]*"|'[^']*'|[^\]])*\])*/.exec(rest);
      if (m === null || m[0] === '') break;
      out.push(m[0]);
      rest = rest.slice(m[0].length).trim();
    }
  }
  return out;
}

function portsOf(text: string, ctx: JailContext): (number | string)[] | undefined {
  const ports: (number | string)[] = [];
  for (const raw of text.split(/[\s,]+/).filter((p) => p !== '')) {
    const range = /^(\d+)[:-](\d+)$/.exec(raw);
    if (range !== null) {
      const low = Math.max(1, Number(range[1]));
      const high = Number(range[2]);
      if (low === 1 && high >= 65535) return undefined;
      ports.push(`${low}-${high}`);
    } else if (/^\d+$/.test(raw)) ports.push(Number(raw));
    else {
      const number = ctx.services.get(raw.toLowerCase());
      if (number === undefined) ctx.notes.push(`port ${raw}: unknown service name`);
      else ports.push(number);
    }
  }
  return [...new Set(ports)];
}

/** fail2ban's time syntax (`10m`, `1h`, `3600`, `1d 2h`, `-1`) as a portcullis duration. */
export function fail2banTime(text: string, permanentAllowed: boolean): string | undefined {
  const value = text.trim().toLowerCase();
  if (/^-\d+$/.test(value)) return permanentAllowed ? '-1' : undefined;
  const units: [RegExp, number][] = [
    [/^(y|years?)$/, 365 * 86400],
    [/^(mo|mon|months?)$/, 30 * 86400],
    [/^(w|wee?ks?)$/, 7 * 86400],
    [/^(d|days?)$/, 86400],
    [/^(h|hours?)$/, 3600],
    [/^(m|mi|min|mins|minutes?)$/, 60],
    [/^(s|sec|secs|seconds?)$/, 1],
  ];
  let seconds = 0;
  let matched = false;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)\s*/g)) {
    matched = true;
    const n = Number(m[1]);
    const unit = m[2] as string;
    if (unit === '') seconds += n;
    else {
      const size = units.find(([re]) => re.test(unit))?.[1];
      if (size === undefined) return undefined;
      seconds += n * size;
    }
  }
  if (!matched || value.replace(/(\d+(?:\.\d+)?)\s*([a-z]*)\s*/g, '') !== '') return undefined;
  return formatDuration(seconds * 1000);
}

function journalWords(text: string): string[] {
  const lines = text
    .split('\n')
    .map((l) =>
      l
        .trim()
        .split(/\s+/)
        .filter((w) => w !== ''),
    )
    .filter((w) => w.length > 0);
  return lines.flatMap((words, i) => (i === 0 ? words : ['+', ...words]));
}

function readServices(path: string): Map<string, number> {
  const map = new Map<string, number>(Object.entries(COMMON_PORTS));
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return map;
  }
  for (const line of text.split('\n')) {
    const m = /^([\w.-]+)\s+(\d+)\/(tcp|udp)((?:\s+[\w.-]+)*)/.exec(line.replace(/#.*/, ''));
    if (m === null) continue;
    for (const name of [m[1] as string, ...(m[4] ?? '').trim().split(/\s+/)]) {
      if (name !== '' && !map.has(name.toLowerCase())) map.set(name.toLowerCase(), Number(m[2]));
    }
  }
  return map;
}

/** Names fail2ban's jail.conf uses, for hosts without /etc/services. */
const COMMON_PORTS: Record<string, number> = {
  ssh: 22,
  http: 80,
  https: 443,
  smtp: 25,
  submission: 587,
  imap: 143,
  imaps: 993,
  pop3: 110,
  pop3s: 995,
  ftp: 21,
  'ftp-data': 20,
  ftps: 990,
  'ftps-data': 989,
  domain: 53,
  ldap: 389,
  ldaps: 636,
  sieve: 4190,
  ssmtp: 465,
  imap2: 143,
  socks: 1080,
};

function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(true|yes|on|1|enabled?)$/i.test(value.trim());
}

function key(name: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
