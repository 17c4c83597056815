#!/usr/bin/env node
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Commander from 'commander';
import type { NftablesConfig } from '../../actions/nftables/options.js';
import { formatDuration } from '../../core/duration.js';
import { ConfigError, ErrorCodes, isPortcullisError, PortcullisError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';

// commander is CommonJS: `require` skips the ESM wrapper and the scan of its exports an `import`
// costs (~10 ms of every call's start-up). Same instance as the `import type`s elsewhere.
const { Command } = createRequire(import.meta.url)('commander') as typeof Commander;

/** Exit statuses: 0 fine, 1 runtime failure, 2 invalid configuration or usage. */
const EXIT_FAILURE = 1;
const EXIT_CONFIG = 2;

const version = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const program = new Command()
  .name('portcullis')
  .description('Inline fail2ban: jails for HTTP, sockets and logs, with shared decisions.')
  .version(version)
  .showHelpAfterError()
  .exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : EXIT_CONFIG);
  });

const DEFAULT_CONFIG = process.env.PORTCULLIS_CONFIG ?? 'portcullis.yaml';
// Each command loads its modules when it runs (dynamic import), and a call naming a command
// registers only the module of that command (`portcullis test` does not load the control
// commands): start-up is part of every CLI call's time (`test` is raced against fail2ban-regex).
// The commands defined here cost nothing to register. Anything else (no command, --help, a
// typo, `help`, a command missing from this table) registers every module, for the full list.
const MODULE_COMMANDS: Readonly<Record<'control' | 'test', readonly string[]>> = {
  control: ['status', 'ban', 'unban', 'banned', 'reload', 'stop', 'ping'],
  test: ['test'],
};
const OWN_COMMANDS = ['run', 'check-config', 'schema', 'init', 'decisions', 'flush', 'actions', 'import'];
const asked = process.argv[2] ?? '';
const known =
  OWN_COMMANDS.includes(asked) || Object.values(MODULE_COMMANDS).some((names) => names.includes(asked));
const wanted = (module: keyof typeof MODULE_COMMANDS) => !known || MODULE_COMMANDS[module].includes(asked);

program
  .command('run')
  .description('start portcullis with a configuration file; SIGHUP reloads it, SIGTERM stops')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (options: { config: string }) => {
    const { runFromFile } = await import('./run.js');
    const instance = await runFromFile(options.config);
    const stop = (signal: string) => {
      instance.logger.info({ event: 'signal', signal }, `received ${signal}`);
      instance.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          instance.logger.error({ err: error }, 'error while stopping');
          process.exit(EXIT_FAILURE);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void instance.reload());
    process.on('SIGUSR1', () => void instance.reopenLogs());
    // A stop asked on the control socket (or the admin API) ends the process like SIGTERM does.
    void instance.stopped.then(() => process.exit(0));
  });

program
  .command('check-config')
  .description('validate a configuration file; exits 2 and names every problem if it is invalid')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (options: { config: string }) => {
    const { loadConfigFile } = await import('../../config/load.js');
    const config = loadConfigFile(options.config);
    // Valid, but probably not what was meant (`10.1.2.3/8` is 10.0.0.0/8): said, not refused. And
    // what the log jails will warn of when they start (a literal `auth.log.2.gz`).
    const { logSourceWarnings } = await import('../../sources/log/log-jail.js');
    const said = [...config.warnings, ...logSourceWarnings(config)];
    for (const warning of said) process.stderr.write(`warning: ${warning}\n`);
    const jails = config.jails.filter((jail) => jail.enabled).map((jail) => jail.name);
    const warnings = said.length === 0 ? '' : `; ${plural(said.length, 'warning')}`;
    process.stdout.write(
      `${options.config}: OK (${plural(jails.length, 'jail')}${jails.length > 0 ? `: ${jails.join(', ')}` : ''}; store ${config.store.kind}${warnings})\n`,
    );
  });

program
  .command('schema')
  .description('print the JSON Schema of the configuration file')
  .action(async () => {
    const { configJsonSchema } = await import('../../config/json-schema.js');
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

if (wanted('control'))
  (await import('./control-commands.js')).registerControlCommands(program, DEFAULT_CONFIG);

program
  .command('init')
  .description('write a commented starter configuration (proxy, sshd log jail, nftables, SQLite)')
  .argument('[file]', 'where to write it', 'portcullis.yaml')
  .option('-f, --force', 'replace an existing file')
  .action(async (file: string, options: { force?: boolean }) => {
    const { runInit } = await import('./init.js');
    if (runInit(file, options) === 'exists') {
      process.stderr.write(`portcullis: ${file} exists; not replaced (use --force to overwrite it)\n`);
      process.exit(EXIT_CONFIG);
    }
    process.stdout.write(
      `wrote ${file}; check it with: portcullis check-config -c ${file}; start with: portcullis run -c ${file}\n`,
    );
  });

program
  .command('decisions')
  .description('list the bans in force')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('--json', 'one JSON object per line')
  .action(async (options: { config: string; json?: boolean }) => {
    const { createGuard } = await import('../../guard.js');
    const guard = await createGuard(options.config);
    try {
      const now = Date.now();
      for (const d of await guard.decisions()) {
        if (options.json) {
          process.stdout.write(`${JSON.stringify(d)}\n`);
          continue;
        }
        const left = d.expiresAt === null ? 'permanent' : `${formatDuration(d.expiresAt - now)} left`;
        process.stdout.write(`${d.target}\t${d.jail}${d.dryRun ? ' (dry run)' : ''}\t${left}\t${d.reason}\n`);
      }
    } finally {
      await guard.close();
    }
  });

program
  .command('flush')
  .description(
    "remove portcullis's firewall objects (its nftables tables; its ipset sets and iptables chains: sets, bans, chains, jumps); stop `run` first, or its check re-creates them within 30 s",
  )
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('--table <name...>', 'nftables table(s) to remove instead of those the configuration names')
  .action(async (options: { config: string; table?: string[] }) => {
    const { loadConfigFile } = await import('../../config/load.js');
    // With --table only those; else every firewall action of the configuration (ipset, iptables too).
    const specs = options.table === undefined ? (loadConfigFile(options.config).actions ?? []) : [];
    const tables =
      options.table ??
      specs
        .filter((spec) => spec.kind === 'nftables')
        .map((spec) => (spec.options as unknown as NftablesConfig).table);
    for (const table of tables) {
      if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(table))
        throw new PortcullisError(
          ErrorCodes.CONFIG_INVALID,
          `--table: not a table name: ${JSON.stringify(table)}`,
        );
    }
    const { flushXtablesActions } = await import('../../actions/iptables/flush.js');
    for (const line of await flushXtablesActions(specs)) process.stdout.write(`${line}\n`);
    if (tables.length === 0) {
      if (!specs.some((spec) => spec.kind === 'ipset' || spec.kind === 'iptables'))
        process.stdout.write(`${options.config}: no firewall action configured; nothing to remove\n`);
      return;
    }
    await (await import('../../actions/nftables/nftables-action.js')).removeNftablesTables(tables);
    for (const table of new Set(tables)) process.stdout.write(`removed nftables table inet ${table}\n`);
  });

if (wanted('test')) (await import('./test-command.js')).registerTestCommand(program);

program
  .command('actions')
  .description('inspect the configured actions')
  .command('check')
  .description(
    'print what each action would create and whether its programs and permissions are there; exits 1 if one is missing',
  )
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('--json', 'one JSON document')
  .action(async (options: { config: string; json?: boolean }) => {
    const { checkActionsOfFile, formatActionsReport } = await import('./actions-check.js');
    const result = await checkActionsOfFile(options.config);
    process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatActionsReport(result));
    if (!result.ok) process.exitCode = 1;
  });

program
  .command('import')
  .description("turn another tool's setup into a portcullis.yaml")
  .command('fail2ban')
  .description('import the enabled jails of a fail2ban setup (jail.conf, jail.d/, jail.local)')
  .argument('[dir]', 'fail2ban configuration directory', undefined)
  .option('-o, --output <file>', 'write the YAML here instead of standard output')
  .action(async (dir: string | undefined, options: { output?: string }) => {
    const { importFail2ban } = await import('./import-fail2ban.js');
    const { fail2banDir } = await import('../../detection/filters/fail2ban/filter-file.js');
    const result = importFail2ban(dir ?? fail2banDir());
    if (options.output === undefined) process.stdout.write(result.yaml);
    else {
      try {
        writeFileSync(options.output, result.yaml, { flag: 'wx' });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        throw new ConfigError([`${options.output}: exists already; not overwritten`]);
      }
    }
    for (const line of result.notCarried) process.stderr.write(`not carried over: ${line}\n`);
    process.stderr.write(`imported ${result.jails.length} jail(s): ${result.jails.join(', ') || 'none'}\n`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (
    isPortcullisError(error) &&
    (error.code === 'PC_ERR_CONFIG_INVALID' || error.code === 'PC_ERR_CONFIG_NOT_FOUND')
  ) {
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const message =
    error instanceof PortcullisError
      ? `${error.code}: ${error.message}`
      : String((error as Error)?.stack ?? error);
  process.stderr.write(`portcullis: ${message}\n`);
  process.exit(EXIT_FAILURE);
});
