import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import type { CommandConfig } from './options.js';
import { type CommandResult, type CommandRunner, spawnCommand } from './run-command.js';
import { batchInput, type CommandOp, type CommandTags, commandEnv, expandArgv, tagsOf } from './template.js';

/** Test hooks. */
export interface CommandActionOptions {
  /** Runs one program. Default: `spawn` without a shell. */
  run?: CommandRunner;
  /** The environment the few inherited variables come from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** Runs at once in per-decision mode: a wave of bans is not one process after another. */
export const COMMAND_CONCURRENCY = 4;

const key = (op: CommandOp, d: Decision) => `${op}\0${d.target}\0${d.startedAt}\0${d.expiresAt}`;

/**
 * The command action: the operator's own program, run for each ban (`ban`) and each end (`unban`)
 * with the decision's values as separate argv elements and `PORTCULLIS_*` variables, or once per
 * batch with the decisions as JSON lines on stdin (`batch: true`). Never through a shell. A run that
 * exits non-zero, is killed by a signal or times out rejects the batch; the runner retries it
 * with backoff. In per-decision mode the runs of a failed batch that succeeded are not made again
 * on the retry (as long as the process lives).
 */
export class CommandAction implements Action {
  readonly name: string;
  readonly kind = 'command';
  readonly scope: 'all' | 'local';
  readonly config: CommandConfig;
  /** Programs run, for tests and stats. */
  runs = 0;
  readonly #context: ActionContext;
  readonly #run: CommandRunner;
  readonly #env: NodeJS.ProcessEnv;
  /** Runs of a failing batch that succeeded, skipped when it is retried. */
  readonly #done = new Set<string>();
  /** Bans applied and not reverted, for `flush`. */
  readonly #applied = new Map<string, Decision>();

  constructor(
    name: string,
    config: CommandConfig,
    context: ActionContext,
    options: CommandActionOptions = {},
  ) {
    this.name = name;
    this.config = config;
    this.scope = config.scope;
    this.#context = context;
    this.#run = options.run ?? spawnCommand;
    this.#env = options.env ?? process.env;
  }

  /** Rejects when a program is missing or not executable, so `run` stops instead of failing every ban. */
  async start(): Promise<void> {
    for (const argv of [this.config.ban, this.config.unban]) {
      if (argv === null) continue;
      const program = argv[0] as string;
      if (!(await this.#executable(program)))
        throw new PortcullisError(
          ErrorCodes.ACTION_FAILED,
          `action ${this.name}: ${program} is not an executable file${program.includes('/') ? '' : ' in PATH'}`,
          { help: 'give the full path of a program portcullis may execute (chmod +x)' },
        );
    }
  }

  async apply(decisions: readonly Decision[]): Promise<void> {
    const live = decisions.filter((d) => !d.dryRun);
    await this.#runAll('ban', this.config.ban, live);
    for (const d of live) this.#applied.set(d.target, d);
  }

  async revert(decisions: readonly Decision[]): Promise<void> {
    const ended = decisions.filter((d) => !d.dryRun);
    if (this.config.unban !== null) await this.#runAll('unban', this.config.unban, ended);
    for (const d of ended) this.#applied.delete(d.target);
  }

  /** Runs `unban` for every ban applied and not reverted (nothing without `unban`). */
  async flush(): Promise<void> {
    await this.revert([...this.#applied.values()]);
  }

  /** Nothing to release: the runner waits for the runs in flight before closing. */
  async close(): Promise<void> {}

  async #runAll(op: CommandOp, template: readonly string[], decisions: readonly Decision[]): Promise<void> {
    const items: { decision: Decision; tags: CommandTags }[] = [];
    const invalid: string[] = [];
    for (const decision of decisions) {
      const tags = tagsOf(decision);
      if (tags === null) invalid.push(String(decision.target));
      else items.push({ decision, tags });
    }
    if (invalid.length > 0)
      this.#context.logger.error(
        {
          event: 'action-invalid-target',
          action: this.name,
          targets: invalid.slice(0, 10).map((t) => JSON.stringify(t)),
        },
        `action ${this.name}: ${invalid.length} target(s) refused: not a canonical address or network; never passed to ${template[0]}`,
      );
    if (items.length === 0) return;

    if (this.config.batch) {
      const result = await this.#exec(
        op,
        [...template],
        commandEnv(this.#env, op, this.name, null, items.length),
        {
          input: batchInput(items.map((item) => item.tags)),
        },
      );
      if (result !== null) throw result;
      return;
    }

    const todo = items.filter((item) => !this.#done.has(key(op, item.decision)));
    const errors: PortcullisError[] = [];
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const item = todo[next++] as (typeof todo)[number];
        const error = await this.#exec(
          op,
          expandArgv(template, item.tags),
          commandEnv(this.#env, op, this.name, item.tags),
          { ip: item.tags.ip },
        );
        if (error === null) this.#done.add(key(op, item.decision));
        else errors.push(error);
      }
    };
    await Promise.all(Array.from({ length: Math.min(COMMAND_CONCURRENCY, todo.length) }, worker));
    if (errors.length > 0) {
      const first = errors[0] as PortcullisError;
      throw new PortcullisError(
        ErrorCodes.ACTION_FAILED,
        errors.length === 1
          ? first.message
          : `${errors.length} of ${todo.length} runs failed; first: ${first.message}`,
        { cause: first },
      );
    }
    for (const item of items) this.#done.delete(key(op, item.decision));
  }

  /** One run; `null` when it succeeded, else the error that rejects the batch. Logs its output. */
  async #exec(
    op: CommandOp,
    argv: string[],
    env: Record<string, string>,
    extra: { input?: string; ip?: string },
  ): Promise<PortcullisError | null> {
    this.runs++;
    const program = argv[0] as string;
    let result: CommandResult;
    try {
      result = await this.#run({
        argv: [this.#resolveProgram(program), ...argv.slice(1)],
        env,
        timeoutMs: this.config.timeoutMs,
        ...(extra.input === undefined ? {} : { input: extra.input }),
      });
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
      return new PortcullisError(ErrorCodes.ACTION_FAILED, `action ${this.name}: ${program}: ${why}`, {
        cause: error,
      });
    }
    const output = { stdout: result.stdout.trimEnd(), stderr: result.stderr.trimEnd() };
    const fields = {
      event: 'action-command-output',
      action: this.name,
      op,
      ...(extra.ip === undefined ? {} : { ip: extra.ip }),
      ...output,
      truncated: result.truncated,
    };
    const ok = result.code === 0 && !result.timedOut;
    if (output.stdout !== '' || output.stderr !== '')
      this.#context.logger[ok ? 'info' : 'warn'](fields, `action ${this.name}: ${program} wrote output`);
    if (ok) return null;
    const how = result.timedOut
      ? `timed out after ${this.config.timeoutMs} ms and was killed`
      : result.code === null
        ? `was killed by ${result.signal}`
        : `exited with status ${result.code}`;
    const detail = output.stderr === '' ? '' : `: ${output.stderr.slice(-300)}`;
    return new PortcullisError(ErrorCodes.ACTION_FAILED, `action ${this.name}: ${program} ${how}${detail}`);
  }

  #resolveProgram(program: string): string {
    if (!program.includes('/') || isAbsolute(program)) return program;
    return resolve(this.#context.baseDir ?? process.cwd(), program);
  }

  async #executable(program: string): Promise<boolean> {
    const candidates = program.includes('/')
      ? [this.#resolveProgram(program)]
      : (this.#env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, program));
    for (const candidate of candidates) {
      try {
        await access(candidate, constants.X_OK);
        return true;
      } catch {}
    }
    return false;
  }
}

/** The action factory of the registry. */
export function createCommandAction(
  name: string,
  config: CommandConfig,
  context: ActionContext,
  options?: CommandActionOptions,
): CommandAction {
  return new CommandAction(name, config, context, options);
}
