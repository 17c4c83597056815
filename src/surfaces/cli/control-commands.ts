import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type * as Yaml from 'yaml';
import type * as ControlModule from '../../config/control.js';
import type { ControlConfig } from '../../config/control.js';
import type * as LoadModule from '../../config/load.js';
import { PERMANENT, parseDuration } from '../../core/duration.js';
import { ErrorCodes, isPortcullisError, PortcullisError } from '../../core/errors.js';
import type { Decision } from '../../core/types.js';
import type * as GuardModule from '../../guard.js';
import type { Guard } from '../../guard.js';
import type { BannedAnswer, JailReport, ReloadAnswer, StatusReport } from '../../operate/control.js';
import type * as CreateControlModule from '../../operate/create-control.js';
import type * as ClientModule from '../control/client.js';
import type { ControlArgs, ControlOp } from '../control/protocol.js';
import { plural, relativeTime, shortDuration, statsRows, table } from './human.js';

// What the commands use, imported when one of them runs: registering them (every `portcullis
// --help`) must not load the guard, the configuration schema and every action.
let parseYaml: typeof Yaml.parse;
let CONTROL_DEFAULTS: typeof ControlModule.CONTROL_DEFAULTS;
let controlOf: typeof ControlModule.controlOf;
let defaultSocketPath: typeof ControlModule.defaultSocketPath;
let loadConfigFile: typeof LoadModule.loadConfigFile;
let createGuard: typeof GuardModule.createGuard;
let configPath: typeof CreateControlModule.configPath;
let createControl: typeof CreateControlModule.createControl;
let requestControl: typeof ClientModule.requestControl;

async function loadModules(): Promise<void> {
  const [yaml, control, load, guard, create, client] = await Promise.all([
    import('yaml'),
    import('../../config/control.js'),
    import('../../config/load.js'),
    import('../../guard.js'),
    import('../../operate/create-control.js'),
    import('../control/client.js'),
  ]);
  parseYaml = yaml.parse;
  ({ CONTROL_DEFAULTS, controlOf, defaultSocketPath } = control);
  ({ loadConfigFile } = load);
  ({ createGuard } = guard);
  ({ configPath, createControl } = create);
  ({ requestControl } = client);
}

/** Exit status when no daemon answers on the control socket. */
export const EXIT_NO_DAEMON = 3;
const EXIT_FAILURE = 1;

interface CommonOptions {
  config: string;
  socket?: string;
  json?: boolean;
}

interface Target {
  path: string;
  /** `--socket` or PORTCULLIS_SOCKET: no falling back to the store when nothing answers. */
  explicit: boolean;
  /** The configuration file the path came from, if any (for the store fallback). */
  configFile: string | null;
}

/**
 * The operator's commands against a running daemon, over its control socket: `status [JAIL]`,
 * `ban`, `unban`, `banned [IP]`, `reload [JAIL]`, `stop`, `ping`. `ban` and `unban` work on the
 * configured store directly when no daemon runs (as they always did).
 */
export function registerControlCommands(program: Command, defaultConfig: string): void {
  const common = (command: Command) =>
    command
      .option('-c, --config <file>', 'configuration file (to find the control socket)', defaultConfig)
      .option('-s, --socket <path>', 'control socket of the daemon (default: from the configuration)')
      .option('--json', 'print JSON');

  common(
    program
      .command('status')
      .description(
        "the daemon's jails (fail2ban's four numbers), store, sources and actions; with JAIL, its details and bans",
      )
      .argument('[jail]', 'one jail'),
  ).action(
    run(async (jail: string | undefined, options: CommonOptions, command: Command) => {
      const target = socketOf(options, command);
      if (jail === undefined) {
        const status = (await ask(target, 'status')) as StatusReport;
        print(options, status, () => formatStatus(status));
      } else {
        const report = (await ask(target, 'jail', { name: jail })) as JailReport;
        print(options, report, () => formatJail(report));
      }
    }),
  );

  common(
    program
      .command('ban')
      .description(
        'ban an address or CIDR range (through the daemon when one runs, else in the configured store)',
      )
      .argument('<target>', 'IP address or CIDR range')
      .option('-j, --jail <jail>', 'record the ban under this jail (its bantime and actions)')
      .option(
        '-b, --bantime <duration>',
        "e.g. 1h, 2d, -1 for permanent (default: the jail's bantime, else 1h)",
      )
      .option('-d, --duration <duration>', 'same as --bantime')
      .option('-r, --reason <text>', 'why', 'banned from the command line')
      .option('--force', 'ban a range wider than /8 (IPv4) or /32 (IPv6), or one written with host bits'),
  ).action(
    run(
      async (
        targetText: string,
        options: CommonOptions & {
          jail?: string;
          bantime?: string;
          duration?: string;
          reason: string;
          force?: boolean;
        },
        command: Command,
      ) => {
        const duration = options.bantime ?? options.duration;
        const bantimeMs = duration === undefined ? undefined : parseDuration(duration);
        const args = {
          target: targetText,
          ...(options.jail === undefined ? {} : { jail: options.jail }),
          ...(bantimeMs === undefined ? {} : { bantimeMs }),
          reason: options.reason,
          ...(options.force === true ? { force: true } : {}),
        };
        const decision = (await viaDaemonOrStore(socketOf(options, command), 'ban', args, (control) =>
          control.ban(targetText, args),
        )) as Decision;
        print(options, decision, () => describeBan(decision));
      },
    ),
  );

  common(
    program
      .command('unban')
      .description('lift a ban (through the daemon when one runs, else in the configured store)')
      .argument('[target]', 'IP address or CIDR range')
      .option('-j, --jail <jail>', "only this jail's ban")
      .option('-a, --all', 'lift every ban (of --jail, if given)'),
  ).action(
    run(
      async (
        targetText: string | undefined,
        options: CommonOptions & { jail?: string; all?: boolean },
        command: Command,
      ) => {
        const jailArg = options.jail === undefined ? {} : { jail: options.jail };
        const socket = socketOf(options, command);
        if (options.all === true) {
          if (targetText !== undefined) throw usage('unban: give a TARGET or --all, not both');
          const lifted = (await viaDaemonOrStore(socket, 'unbanAll', jailArg, (control) =>
            control.unbanAll(jailArg),
          )) as number;
          print(options, { lifted }, () =>
            lifted === 0
              ? `no bans to lift${options.jail === undefined ? '' : ` in jail ${options.jail}`}`
              : `unbanned ${plural(lifted, 'ban')}${options.jail === undefined ? '' : ` of jail ${options.jail}`}`,
          );
          return;
        }
        if (targetText === undefined) throw usage('unban: give a TARGET (or --all)');
        const lifted = (await viaDaemonOrStore(
          socket,
          'unban',
          { target: targetText, ...jailArg },
          (control) => control.unban(targetText, jailArg),
        )) as number;
        print(options, { target: targetText, lifted }, () =>
          lifted > 0
            ? `unbanned ${targetText}`
            : `${targetText} was not banned${options.jail === undefined ? '' : ` by jail ${options.jail}`}`,
        );
        if (lifted === 0) process.exitCode = EXIT_FAILURE;
      },
    ),
  );

  common(
    program
      .command('banned')
      .description('which jails ban IP and until when; without IP, every ban in force')
      .argument('[ip]', 'an address')
      .option('-j, --jail <jail>', 'only the bans of this jail (without IP)'),
  ).action(
    run(async (ip: string | undefined, options: CommonOptions & { jail?: string }, command: Command) => {
      const target = socketOf(options, command);
      if (ip === undefined) {
        const list = (await ask(
          target,
          'decisions',
          options.jail === undefined ? {} : { jail: options.jail },
        )) as Decision[];
        print(options, list, () => formatBans(list, Date.now(), true));
        return;
      }
      const answer = (await ask(target, 'banned', { ip })) as BannedAnswer;
      print(options, answer, () => formatBanned(answer));
    }),
  );

  common(
    program
      .command('reload')
      .description(
        're-read the configuration file (what SIGHUP does); a bad file is refused and the running one kept',
      )
      .argument('[jail]', 'the jail to reload (this version reloads them all)'),
  ).action(
    run(async (jail: string | undefined, options: CommonOptions, command: Command) => {
      const answer = (await ask(
        socketOf(options, command),
        'reload',
        jail === undefined ? {} : { jail },
      )) as ReloadAnswer;
      print(options, answer, () => {
        const asked =
          answer.requested === null ? '' : ` (asked for ${answer.requested}; every jail is reloaded)`;
        return `configuration reloaded${asked}: ${plural(answer.jails.length, 'jail')}${answer.jails.length > 0 ? `: ${answer.jails.join(', ')}` : ''}`;
      });
    }),
  );

  common(
    program
      .command('stop')
      .description('stop the daemon gracefully (what SIGTERM does) and wait until it is gone'),
  ).action(
    run(async (options: CommonOptions, command: Command) => {
      const target = socketOf(options, command);
      const pong = (await ask(target, 'ping')) as { pid: number };
      await ask(target, 'stop');
      const deadline = Date.now() + 30_000;
      // Gone once the socket no longer answers (it is closed first thing in a stop).
      while (Date.now() < deadline) {
        try {
          await requestControl(target.path, 'ping', {}, { timeoutMs: 2000 });
        } catch (error) {
          if (isPortcullisError(error, ErrorCodes.NO_DAEMON)) break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      print(options, { stopped: true, pid: pong.pid }, () => `portcullis (pid ${pong.pid}) is stopping`);
    }),
  );

  common(program.command('ping').description('is the daemon there?')).action(
    run(async (options: CommonOptions, command: Command) => {
      const pong = (await ask(socketOf(options, command), 'ping')) as { pid: number; version: string };
      print(options, pong, () => `pong from portcullis ${pong.version} (pid ${pong.pid})`);
    }),
  );
}

/** Wraps an action: "no daemon" is a clear line and its own exit status. */
function run<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await loadModules();
      await action(...args);
    } catch (error) {
      if (isPortcullisError(error, ErrorCodes.NO_DAEMON)) {
        process.stderr.write(`portcullis: ${error.message}\n`);
        process.exit(EXIT_NO_DAEMON);
      }
      throw error;
    }
  };
}

function usage(message: string): PortcullisError {
  return new PortcullisError(ErrorCodes.CONFIG_INVALID, message);
}

/**
 * The socket to talk to: `--socket`, else PORTCULLIS_SOCKET, else the configuration's
 * `control.socket` (or its default), else the default for no configuration.
 */
function socketOf(options: CommonOptions, command: Command): Target {
  if (options.socket !== undefined) return { path: options.socket, explicit: true, configFile: null };
  const env = process.env.PORTCULLIS_SOCKET;
  const fromCli = command.getOptionValueSource('config') === 'cli';
  if (env !== undefined && env !== '' && !fromCli) return { path: env, explicit: true, configFile: null };
  if (fromCli || existsSync(options.config)) {
    const control = controlOfFile(options.config);
    if (control === null)
      throw new PortcullisError(
        ErrorCodes.CONTROL_SOCKET,
        `${options.config}: the control socket is off (control: false); use --socket or turn it on`,
      );
    return { path: control.socket, explicit: false, configFile: options.config };
  }
  return { path: defaultSocketPath(process.cwd()), explicit: false, configFile: null };
}

/**
 * The control settings of a configuration file. A file the loader refuses (being edited, about
 * to be reloaded) still names its socket: only `control:` is read from it then.
 */
function controlOfFile(file: string): ControlConfig | null {
  try {
    return controlOf(loadConfigFile(file));
  } catch (error) {
    if (!isPortcullisError(error, ErrorCodes.CONFIG_INVALID)) throw error;
  }
  let control: unknown;
  try {
    control = (parseYaml(readFileSync(file, 'utf8')) as { control?: unknown } | null)?.control;
  } catch {
    control = undefined;
  }
  const dir = dirname(resolve(file));
  if (control === false) return null;
  const socket = (control as { socket?: unknown } | undefined)?.socket;
  if (typeof socket === 'string' && socket !== '')
    return { socket: resolve(dir, socket), mode: CONTROL_DEFAULTS.mode, explicit: true };
  return { socket: defaultSocketPath(dir), mode: CONTROL_DEFAULTS.mode, explicit: false };
}

/**
 * One request. When the socket came from a configuration file, the daemon must be running that
 * file: another daemon's default socket must not take a command meant for this configuration.
 */
async function ask<Op extends ControlOp>(target: Target, op: Op, args?: ControlArgs<Op>): Promise<unknown> {
  if (target.configFile !== null) {
    const pong = (await requestControl(target.path, 'ping')) as { config?: string | null };
    const mine = configPath(target.configFile);
    if (pong.config !== undefined && pong.config !== mine)
      throw new PortcullisError(
        ErrorCodes.NO_DAEMON,
        `no portcullis daemon for ${target.configFile} at ${target.path}: the one there runs ${pong.config ?? 'a configuration object'} (use --socket, or give each configuration its own control.socket)`,
      );
  }
  return requestControl(target.path, op, args);
}

/**
 * Through the daemon when one answers; else (the socket was not named explicitly) on the
 * configured store, as a short-lived guard: the write must have reached the store.
 */
async function viaDaemonOrStore<Op extends ControlOp>(
  target: Target,
  op: Op,
  args: ControlArgs<Op>,
  direct: (control: ReturnType<typeof createControl>) => Promise<unknown>,
): Promise<unknown> {
  try {
    return await ask(target, op, args);
  } catch (error) {
    if (!isPortcullisError(error, ErrorCodes.NO_DAEMON) || target.explicit || target.configFile === null)
      throw error;
  }
  const guard = await createGuard(target.configFile);
  const control = createControl({
    guard,
    sourceStats: () => ({}),
    actionStats: () => ({}),
    reload: async () => ({ ok: false, error: 'no daemon' }),
    stop: async () => {},
  });
  try {
    const result = await direct(control);
    assertWritten(guard, target.configFile);
    return result;
  } finally {
    control.close();
    await guard.close();
  }
}

/**
 * The guard queues a write the store refused (to retry once it is back); a command that exits
 * right after must say it failed rather than report a decision that was never stored.
 */
function assertWritten(guard: Guard, config: string): void {
  if (guard.stats.pendingWrites === 0) return;
  throw new PortcullisError(
    ErrorCodes.STORE_UNAVAILABLE,
    `${config}: the store did not take the decision; nothing was changed`,
  );
}

function print(options: { json?: boolean }, value: unknown, human: () => string): void {
  process.stdout.write(options.json === true ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

function describeBan(d: Decision): string {
  const jail = d.jail === 'manual' ? '' : `jail ${d.jail}`;
  if (d.expiresAt === null) return `banned ${d.target} permanently${jail === '' ? '' : ` (${jail})`}`;
  const left = relativeTime(d.expiresAt, Date.now());
  return `banned ${d.target} until ${new Date(d.expiresAt).toISOString()} (${left}${jail === '' ? '' : `, ${jail}`})`;
}

const bantimeText = (ms: number) => (ms === PERMANENT ? 'permanent' : shortDuration(ms));

function formatStatus(s: StatusReport): string {
  const store = `store ${s.store.kind} (${s.store.available ? 'up' : 'DOWN'}${s.store.pendingWrites > 0 ? `, ${plural(s.store.pendingWrites, 'write')} waiting` : ''})`;
  const lines = [
    `portcullis ${s.version}, pid ${s.pid}, up ${shortDuration(s.uptimeMs)}, ${store}, ${plural(s.activeBans, 'ban')} enforced`,
    '',
  ];
  if (s.jails.length === 0) lines.push('no jails');
  else
    lines.push(
      table(
        [
          'JAIL',
          'SOURCE',
          'FAILED NOW',
          'FAILED TOTAL',
          'BANNED NOW',
          'BANNED TOTAL',
          'MAXRETRY',
          'FINDTIME',
          'BANTIME',
        ],
        s.jails.map((j) => [
          j.name + (j.dryRun ? ' (dry run)' : ''),
          j.source,
          String(j.currentlyFailed),
          String(j.totalFailed),
          String(j.currentlyBanned),
          String(j.totalBanned),
          String(j.maxretry),
          shortDuration(j.findtimeMs),
          bantimeText(j.bantimeMs),
        ]),
      ),
    );
  const sources = Object.entries(s.sources);
  if (sources.length > 0) {
    lines.push('', table(['SOURCE', 'STATS'], statsRows(s.sources)));
  }
  const actions = Object.entries(s.actions);
  if (actions.length > 0) {
    lines.push('', table(['ACTION', 'STATS'], statsRows(s.actions)));
  }
  return lines.join('\n');
}

function formatJail(j: JailReport): string {
  const lines = [
    `jail ${j.name}${j.dryRun ? ' (dry run)' : ''}: source ${j.source}, maxretry ${j.maxretry}, findtime ${shortDuration(j.findtimeMs)}, bantime ${bantimeText(j.bantimeMs)}`,
    `  currently failed: ${j.currentlyFailed}   total failed: ${j.totalFailed}`,
    `  currently banned: ${j.currentlyBanned}   total banned: ${j.totalBanned}`,
    `  watching: ${j.watching.length === 0 ? '-' : j.watching.join(', ')}`,
    '',
    formatBans(j.bans, Date.now(), false),
  ];
  return lines.join('\n');
}

function formatBans(list: readonly Decision[], now: number, withJail: boolean): string {
  if (list.length === 0) return 'no bans';
  const headers = withJail
    ? ['TARGET', 'JAIL', 'ENDS', 'STARTED', 'REASON']
    : ['TARGET', 'ENDS', 'STARTED', 'REASON'];
  const rows = list.map((d) => {
    const cells = [
      d.target + (d.dryRun ? ' (dry run)' : ''),
      d.expiresAt === null ? 'never' : relativeTime(d.expiresAt, now),
      relativeTime(d.startedAt, now),
      d.reason,
    ];
    if (withJail) cells.splice(1, 0, d.jail);
    return cells;
  });
  return table(headers, rows);
}

function formatBanned(answer: BannedAnswer): string {
  if (answer.decisions.length === 0) return `${answer.ip} is not banned`;
  const now = Date.now();
  const head = answer.banned ? `${answer.ip} is banned` : `${answer.ip} is not banned (dry run only)`;
  return `${head}\n\n${formatBans(answer.decisions, now, true)}`;
}
