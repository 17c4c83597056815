#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { removeNftablesTables } from '../../actions/nftables/nftables-action.js';
import type { NftablesConfig } from '../../actions/nftables/options.js';
import { configJsonSchema } from '../../config/json-schema.js';
import { loadConfigFile } from '../../config/load.js';
import { formatDuration } from '../../core/duration.js';
import { ErrorCodes, isPortcullisError, PortcullisError } from '../../core/errors.js';
import { createGuard, type Guard } from '../../guard.js';
import { runFromFile } from './run.js';

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

program
  .command('run')
  .description('start portcullis with a configuration file; SIGHUP reloads it, SIGTERM stops')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (options: { config: string }) => {
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
  });

program
  .command('check-config')
  .description('validate a configuration file; exits 2 and names every problem if it is invalid')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action((options: { config: string }) => {
    const config = loadConfigFile(options.config);
    // Valid, but probably not what was meant (`10.1.2.3/8` is 10.0.0.0/8): said, not refused.
    for (const warning of config.warnings) process.stderr.write(`warning: ${warning}\n`);
    const jails = config.jails.filter((jail) => jail.enabled).map((jail) => jail.name);
    const warnings = config.warnings.length === 0 ? '' : `; ${config.warnings.length} warning(s)`;
    process.stdout.write(
      `${options.config}: OK (${jails.length} jail(s): ${jails.join(', ') || 'none'}; store ${config.store.kind}${warnings})\n`,
    );
  });

program
  .command('schema')
  .description('print the JSON Schema of the configuration file')
  .action(() => {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

program
  .command('ban')
  .description('ban an address or CIDR range in the configured store')
  .argument('<target>', 'IP address or CIDR range')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('-d, --duration <duration>', 'e.g. 1h, 2d, -1 for permanent', '1h')
  .option('-r, --reason <text>', 'why', 'banned from the command line')
  .action(async (target: string, options: { config: string; duration: string; reason: string }) => {
    const guard = await createGuard(options.config);
    try {
      const decision = await guard.ban(target, { duration: options.duration, reason: options.reason });
      assertWritten(guard, options.config);
      const until =
        decision.expiresAt === null ? 'permanently' : `until ${new Date(decision.expiresAt).toISOString()}`;
      process.stdout.write(`banned ${decision.target} ${until}\n`);
    } finally {
      await guard.close();
    }
  });

program
  .command('unban')
  .description('lift the ban of an address or CIDR range')
  .argument('<target>', 'IP address or CIDR range')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (target: string, options: { config: string }) => {
    const guard = await createGuard(options.config);
    try {
      const lifted = await guard.unban(target);
      assertWritten(guard, options.config);
      process.stdout.write(lifted ? `unbanned ${target}\n` : `${target} was not banned\n`);
      if (!lifted) process.exitCode = EXIT_FAILURE;
    } finally {
      await guard.close();
    }
  });

program
  .command('decisions')
  .description('list the bans in force')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('--json', 'one JSON object per line')
  .action(async (options: { config: string; json?: boolean }) => {
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
    "remove portcullis's firewall objects (its nftables tables: sets, bans, chains); stop `run` first, or its check re-creates them within 30 s",
  )
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('--table <name...>', 'nftables table(s) to remove instead of those the configuration names')
  .action(async (options: { config: string; table?: string[] }) => {
    const tables =
      options.table ??
      (loadConfigFile(options.config).actions ?? [])
        .filter((spec) => spec.kind === 'nftables')
        .map((spec) => (spec.options as unknown as NftablesConfig).table);
    for (const table of tables) {
      if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(table))
        throw new PortcullisError(
          ErrorCodes.CONFIG_INVALID,
          `--table: not a table name: ${JSON.stringify(table)}`,
        );
    }
    if (tables.length === 0) {
      process.stdout.write(`${options.config}: no firewall action configured; nothing to remove\n`);
      return;
    }
    await removeNftablesTables(tables);
    for (const table of new Set(tables)) process.stdout.write(`removed nftables table inet ${table}\n`);
  });

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

(await import('./test-command.js')).registerTestCommand(program);

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
