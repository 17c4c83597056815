import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { CommandConfig } from '../../actions/command/options.js';
import type { EmailConfig } from '../../actions/email/options.js';
import type { HostsdenyConfig } from '../../actions/hostsdeny/options.js';
import type { IpsetConfig } from '../../actions/ipset/options.js';
import { ipsetSets } from '../../actions/ipset/script.js';
import { parentChain } from '../../actions/iptables/chain.js';
import type { IptablesConfig } from '../../actions/iptables/options.js';
import type { NftablesConfig } from '../../actions/nftables/options.js';
import { chainName } from '../../actions/nftables/script.js';
import type { NginxConfig } from '../../actions/nginx/options.js';
import type { SecretRef } from '../../actions/notify/options.js';
import { urlForLogs } from '../../actions/notify/secrets.js';
import type { ActionSpec } from '../../actions/registry.js';
import type { SmsConfig } from '../../actions/sms/options.js';
import type { WebhookConfig } from '../../actions/webhook/options.js';

/**
 * `portcullis actions check -c FILE`: per configured action, what it would create on the host
 * (tables, sets, chains, files, recipients — never a secret's value) and whether what it needs is
 * there: its programs on PATH, root or CAP_NET_ADMIN for the firewall kinds, a writable directory
 * for the files, the secrets' variables and files. Nothing is created or changed. Exit 0 when
 * every check passes, 1 otherwise (2: the configuration is invalid).
 */

/** One requirement and whether it is met. */
export interface ActionRequirement {
  what: string;
  ok: boolean;
  detail: string;
}

export interface ActionReport {
  name: string;
  kind: string;
  /** The jails whose bans it gets (`defaults`: manual bans too). */
  jails: string[];
  creates: string[];
  needs: ActionRequirement[];
  ok: boolean;
}

/** What the checks may look at; injected in tests. */
export interface HostProbe {
  /** The program's path when found and executable, else `null`. */
  which(program: string): Promise<string | null>;
  /** Whether the process is root or holds CAP_NET_ADMIN. */
  netAdmin(): Promise<{ ok: boolean; detail: string }>;
  /** Whether a file can be written (it, or its directory when it does not exist). */
  writable(path: string): Promise<{ ok: boolean; detail: string }>;
  env: Readonly<Record<string, string | undefined>>;
  readable(path: string): Promise<boolean>;
}

const CAP_NET_ADMIN = 12n;

/** The real host. */
export const hostProbe: HostProbe = {
  async which(program) {
    const candidates = program.includes('/')
      ? [program]
      : (process.env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, program));
    for (const path of candidates) {
      try {
        const info = await stat(path);
        if (!info.isFile()) continue;
        await access(path, constants.X_OK);
        return path;
      } catch {}
    }
    return null;
  },
  async netAdmin() {
    if (process.getuid?.() === 0) return { ok: true, detail: 'running as root' };
    const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (hex !== undefined && (BigInt(`0x${hex}`) >> CAP_NET_ADMIN) & 1n)
      return { ok: true, detail: 'CAP_NET_ADMIN' };
    return {
      ok: false,
      detail: 'not root and no CAP_NET_ADMIN (run as root, or AmbientCapabilities=CAP_NET_ADMIN)',
    };
  },
  async writable(path) {
    try {
      await access(path, constants.W_OK);
      return { ok: true, detail: `${path} is writable` };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        return { ok: false, detail: `${path} is not writable` };
    }
    const dir = dirname(path);
    try {
      await access(dir, constants.W_OK);
      return { ok: true, detail: `${path} will be created in ${dir}` };
    } catch {
      return { ok: false, detail: `${dir} is missing or not writable` };
    }
  },
  env: process.env,
  async readable(path) {
    try {
      await access(path, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  },
};

type Options = Readonly<Record<string, unknown>>;
const as = <T>(options: Options) => options as unknown as T;

/** What an action would create, in words an operator greps the ruleset for. */
export function createsOf(spec: ActionSpec, baseDir: string): string[] {
  switch (spec.kind) {
    case 'nftables': {
      const c = as<NftablesConfig>(spec.options);
      const hook = c.chain === 'input' ? 'input' : 'forward';
      return [
        `nftables table inet ${c.table}`,
        `sets ${c.setPrefix}_v4, ${c.setPrefix}_v6 (flags timeout), ${c.setPrefix}_v4_<len> / _v6_<len> per banned range length`,
        `chain ${chainName(c)} (hook ${hook}, priority filter - 1): ${c.verdict} ${describePorts(c)}`,
      ];
    }
    case 'ipset': {
      const c = as<IpsetConfig>(spec.options);
      return [
        `ipsets ${ipsetSets(c)
          .map((set) => `${set.name} (${set.type} family ${set.family === 4 ? 'inet' : 'inet6'})`)
          .join(', ')}, maxelem ${c.maxelem}, timeout per entry`,
        `iptables and ip6tables chain ${c.chain} (filter table): ${c.verdict} ${describePorts(c)}`,
        `jump to ${c.chain} at the top of ${parentChain(c.hook)}`,
      ];
    }
    case 'iptables': {
      const c = as<IptablesConfig>(spec.options);
      return [
        `iptables and ip6tables chain ${c.chain} (filter table): one ${c.verdict} rule per ban, ${describePorts(c)}`,
        `jump to ${c.chain} at the top of ${parentChain(c.hook)}`,
      ];
    }
    case 'hostsdeny': {
      const c = as<HostsdenyConfig>(spec.options);
      return [`lines "${c.daemon}: ADDRESS" in a marked block of ${resolve(baseDir, c.file)}`];
    }
    case 'nginx': {
      const c = as<NginxConfig>(spec.options);
      return [
        `geo include file ${resolve(baseDir, c.file)} ("ADDRESS 1;" per ban)`,
        `runs ${c.reload.join(' ')} after changes (at most every ${c.debounceMs} ms)`,
      ];
    }
    case 'command': {
      const c = as<CommandConfig>(spec.options);
      return [
        `runs ${c.ban[0]} for each ban${c.unban === null ? '' : `, ${c.unban[0]} when it ends`} (no shell)`,
      ];
    }
    case 'email': {
      const c = as<EmailConfig>(spec.options);
      return [
        `e-mail to ${c.to.join(', ')} from ${c.from} via ${c.secure ? 'smtps' : 'smtp'}://${c.host}:${c.port}`,
      ];
    }
    case 'webhook': {
      const c = as<WebhookConfig>(spec.options);
      const url = c.url !== null ? urlForLogs(c.url) : secretWhere(c.urlSecret);
      return [`${c.format} webhook POST to ${url}`];
    }
    case 'sms': {
      const c = as<SmsConfig>(spec.options);
      return [`SMS to ${c.to.join(', ')} via ${urlForLogs(c.url.replace('<account>', 'ACCOUNT'))}`];
    }
    default:
      return [];
  }
}

function describePorts(c: { protocol: string | null; ports: readonly string[] | null }): string {
  if (c.ports === null) return c.protocol === null ? 'every port and protocol' : `every ${c.protocol} port`;
  return `${c.protocol} ports ${c.ports.join(', ')}`;
}

function secretWhere(ref: SecretRef | null): string {
  if (ref === null) return '(none)';
  return 'env' in ref ? `the URL in $${ref.env}` : `the URL in ${ref.file}`;
}

/** The programs an action runs. */
function programsOf(spec: ActionSpec): string[] {
  switch (spec.kind) {
    case 'nftables':
      return ['nft'];
    case 'ipset':
      return ['ipset', 'iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore'];
    case 'iptables':
      return ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore'];
    case 'nginx':
      return [as<NginxConfig>(spec.options).reload[0] as string];
    case 'command': {
      const c = as<CommandConfig>(spec.options);
      return [...new Set([c.ban[0] as string, ...(c.unban === null ? [] : [c.unban[0] as string])])];
    }
    default:
      return [];
  }
}

function secretsOf(spec: ActionSpec): SecretRef[] {
  switch (spec.kind) {
    case 'email':
      return [as<EmailConfig>(spec.options).password].filter((r): r is SecretRef => r !== null);
    case 'webhook':
      return [as<WebhookConfig>(spec.options).urlSecret].filter((r): r is SecretRef => r !== null);
    case 'sms':
      return [as<SmsConfig>(spec.options).token];
    default:
      return [];
  }
}

/** Checks one action against the host. */
export async function checkAction(
  spec: ActionSpec,
  jails: string[],
  baseDir: string,
  probe: HostProbe = hostProbe,
): Promise<ActionReport> {
  const needs: ActionRequirement[] = [];
  for (const program of programsOf(spec)) {
    const path = await probe.which(program);
    needs.push({ what: program, ok: path !== null, detail: path ?? 'not found on PATH' });
  }
  if (spec.kind === 'nftables' || spec.kind === 'ipset' || spec.kind === 'iptables')
    needs.push({ what: 'CAP_NET_ADMIN', ...(await probe.netAdmin()) });
  if (spec.kind === 'hostsdeny' || spec.kind === 'nginx') {
    const file = resolve(baseDir, as<{ file: string }>(spec.options).file);
    needs.push({ what: 'write access', ...(await probe.writable(file)) });
  }
  for (const ref of secretsOf(spec)) {
    if ('env' in ref) {
      const set = (probe.env[ref.env] ?? '').trim() !== '';
      needs.push({ what: `$${ref.env}`, ok: set, detail: set ? 'set' : 'not set or empty' });
    } else {
      const path = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
      const ok = await probe.readable(path);
      needs.push({
        what: 'secret file',
        ok,
        detail: ok ? `${path} is readable` : `${path} is missing or unreadable`,
      });
    }
  }
  return {
    name: spec.name,
    kind: spec.kind,
    jails,
    creates: createsOf(spec, baseDir),
    needs,
    ok: needs.every((n) => n.ok),
  };
}

/** Checks every action of a configuration file. */
export async function checkActionsOfFile(file: string, probe: HostProbe = hostProbe) {
  // Imported here: registering the command (every `portcullis --help`) must not load the config schema.
  const { loadConfigFile } = await import('../../config/load.js');
  const config = loadConfigFile(file);
  const baseDir = dirname(resolve(file));
  const reports: ActionReport[] = [];
  for (const spec of config.actions ?? []) {
    const jails = config.jails.filter((jail) => jail.actions.includes(spec)).map((jail) => jail.name);
    if ((config.defaultActions ?? []).includes(spec)) jails.push('(manual bans)');
    reports.push(await checkAction(spec, jails, baseDir, probe));
  }
  return { file, ok: reports.every((r) => r.ok), actions: reports };
}

/** The human form of {@link checkActionsOfFile}'s result. */
export function formatActionsReport(result: Awaited<ReturnType<typeof checkActionsOfFile>>): string {
  if (result.actions.length === 0) return `${result.file}: no action configured\n`;
  const lines: string[] = [];
  for (const report of result.actions) {
    lines.push(
      `${report.ok ? 'ok  ' : 'FAIL'} ${report.name} (${report.kind}) for ${report.jails.join(', ') || 'no jail'}`,
    );
    for (const item of report.creates) lines.push(`       creates: ${item}`);
    for (const need of report.needs)
      lines.push(`       needs ${need.what}: ${need.ok ? 'ok' : 'MISSING'} (${need.detail})`);
  }
  const failed = result.actions.filter((r) => !r.ok).length;
  lines.push(
    failed === 0
      ? `${result.file}: ${result.actions.length} action(s), all requirements met`
      : `${result.file}: ${failed} of ${result.actions.length} action(s) cannot run here`,
  );
  return `${lines.join('\n')}\n`;
}
