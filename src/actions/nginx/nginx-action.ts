import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import { type CommandRunner, spawnCommand } from '../command/run-command.js';
import { rewriteLockedFile } from '../hostsdeny/locked-file.js';
import { refuse, screenTargets } from '../iptables/iptables-action.js';
import type { NginxConfig } from './options.js';

/** Test hooks. */
export interface NginxActionOptions {
  /** Runs the reload command. Default: spawn, no shell, own process group. */
  run?: CommandRunner;
  /** The environment the few inherited variables come from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The reload command's environment: `PATH`, `LANG` and `LC_*` of the daemon's, nothing else — the
 * daemon's environment may hold secrets (the admin token, a store password) that `nginx -s reload`
 * or a wrapper script has no business seeing.
 */
export function reloadEnv(from: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(from)) {
    if (value === undefined) continue;
    if (key === 'PATH' || key === 'LANG' || key.startsWith('LC_')) env[key] = value;
  }
  return env;
}

/**
 * The include file's text: a header, then `ADDRESS 1;` per ban (`192.0.2.7 1;`, `10.0.0.0/8 1;`,
 * `2001:db8::/64 1;`), the syntax of an nginx `geo` block. Targets are re-validated canonical
 * addresses and networks only, no wider than /8 or /32 (see `screenTargets`), so no line can hold
 * anything else.
 */
export function renderGeoInclude(targets: Iterable<string>): string {
  const list = [...targets];
  const lines = [
    '# Written by portcullis: the addresses and networks it bans. Do not edit: it is rewritten on',
    '# every change. Use it as: geo $portcullis_banned { default 0; include THIS_FILE; }',
    `# ${list.length} entr${list.length === 1 ? 'y' : 'ies'}`,
    ...list.map((target) => `${target} 1;`),
    '',
  ];
  return lines.join('\n');
}

/**
 * The nginx action, for sites that keep nginx in front: every ban in force is a line of a `geo`
 * include file that nginx's own config turns into `return 403` (or `444`), so banned clients are
 * refused at nginx speed. The file is rewritten atomically (temp + rename, mode and owner kept) and
 * nginx reloaded — at most once per `debounce`: a change right after a reload waits for the rest
 * of the interval, and everything written meanwhile goes with it. nginx has no timeouts: a ban is
 * removed when it ends, or (ended while portcullis was down) at the next start's replay.
 */
export class NginxAction implements Action {
  readonly name: string;
  readonly kind = 'nginx';
  readonly scope = 'all' as const;
  readonly config: NginxConfig;
  /** The include file, absolute. */
  readonly file: string;
  /** Reloads run (for tests). */
  reloads = 0;
  /** Targets refused since start: not canonical, or wider than /8 (IPv4) or /32 (IPv6). */
  refused = 0;
  readonly #context: ActionContext;
  readonly #run: CommandRunner;
  readonly #env: NodeJS.ProcessEnv;
  #targets = new Set<string>();
  #lastReloadAt = Number.NEGATIVE_INFINITY;
  /** The file changed and nginx has not been reloaded since (a failed reload is retried with the batch). */
  #dirty = false;
  #closed = false;

  constructor(name: string, config: NginxConfig, context: ActionContext, options: NginxActionOptions = {}) {
    this.name = name;
    this.config = config;
    this.#context = context;
    this.file = resolve(context.baseDir ?? process.cwd(), config.file);
    this.#run = options.run ?? spawnCommand;
    this.#env = options.env ?? process.env;
  }

  /** Makes sure the include exists (nginx refuses a config whose include is missing); no reload. */
  async start(): Promise<void> {
    await rewriteLockedFile(this.file, (current) => current ?? renderGeoInclude([]));
  }

  async apply(decisions: readonly Decision[]): Promise<void> {
    await this.#change(decisions, 'apply');
  }

  async restore(decisions: readonly Decision[]): Promise<void> {
    await this.#change(decisions, 'restore');
  }

  async revert(decisions: readonly Decision[]): Promise<void> {
    await this.#change(decisions, 'revert');
  }

  async flush(): Promise<void> {
    await this.#write(new Set(), true);
  }

  /** `false` (after writing it again and reloading) when the file is gone or was changed by hand. */
  async check(): Promise<boolean> {
    const text = await readFile(this.file, 'utf8').catch(() => null);
    if (text === renderGeoInclude(this.#targets) && !this.#dirty) return true;
    await this.#write(this.#targets, true);
    return false;
  }

  /** Leaves the file: nginx goes on refusing the banned. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  async #change(decisions: readonly Decision[], how: 'apply' | 'revert' | 'restore'): Promise<void> {
    const batch = screenTargets(decisions, this.#context.clock.now());
    this.refused += refuse(this.#context, this.name, batch.invalid, batch.tooWide);
    const next = how === 'restore' ? new Set<string>() : new Set(this.#targets);
    for (const e of batch.live) {
      if (how === 'revert') next.delete(e.text);
      else next.add(e.text);
    }
    for (const e of batch.ended) next.delete(e.text);
    const same = next.size === this.#targets.size && [...next].every((t) => this.#targets.has(t));
    if (same && !this.#dirty && how !== 'restore') return;
    // A restore writes whatever is there (a file left by an earlier run may differ) and reloads.
    await this.#write(next, how === 'restore');
  }

  /** Writes the file (the set is kept only once it is written), then reloads if it changed or `force`. */
  async #write(next: Set<string>, force: boolean): Promise<void> {
    const written = await rewriteLockedFile(this.file, () => renderGeoInclude(next));
    this.#targets = next;
    if (written) this.#dirty = true;
    if (!this.#dirty && !force) return;
    await this.#reload();
    this.#dirty = false;
  }

  async #reload(): Promise<void> {
    const wait = this.#lastReloadAt + this.config.debounceMs - this.#context.clock.now();
    if (wait > 0 && !this.#closed) await new Promise((r) => setTimeout(r, wait));
    this.#lastReloadAt = this.#context.clock.now();
    this.reloads++;
    const env = reloadEnv(this.#env);
    const argv = this.config.reload;
    let result: Awaited<ReturnType<CommandRunner>>;
    try {
      result = await this.#run({ argv, env, timeoutMs: this.config.timeoutMs });
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new PortcullisError(
        ErrorCodes.ACTION_FAILED,
        missing
          ? `${argv[0]} not found: cannot reload nginx`
          : `${argv.join(' ')}: ${(error as Error).message}`,
        { cause: error, help: missing ? 'apt-get install nginx, or set reload: [...]' : undefined },
      );
    }
    if (result.code === 0) return;
    const why = result.timedOut
      ? `timed out after ${this.config.timeoutMs} ms`
      : result.code === null
        ? `killed by ${result.signal}`
        : `exited ${result.code}`;
    throw new PortcullisError(
      ErrorCodes.ACTION_FAILED,
      `${argv.join(' ')} ${why}: ${result.stderr.trim().slice(0, 600)}`,
    );
  }
}

/** The action factory of the registry. */
export function createNginxAction(
  name: string,
  config: NginxConfig,
  context: ActionContext,
  options?: NginxActionOptions,
): NginxAction {
  return new NginxAction(name, config, context, options);
}
