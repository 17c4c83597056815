import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import { editHostsText, type HostsEdit, markerName, parseHostsFile, targetsOf } from './hosts-file.js';
import { type LockedFileOptions, rewriteLockedFile } from './locked-file.js';
import type { HostsdenyConfig } from './options.js';

/** Test hooks. */
export interface HostsdenyActionOptions extends LockedFileOptions {}

/**
 * The hostsdeny action: one `daemon: pattern` line per ban in portcullis's own block of a
 * tcp_wrappers file (see `hosts-file.ts`), each batch one atomic rewrite under a lock (see
 * `locked-file.ts`). The lines carry no expiry: an ended ban is removed by `revert`, and bans that
 * ended while portcullis was down are removed by the `restore` at the next start. `close()` leaves
 * the lines: tcp_wrappers goes on refusing those clients until the next start or `flush`.
 */
export class HostsdenyAction implements Action {
  readonly name: string;
  readonly kind = 'hostsdeny';
  readonly scope = 'all' as const;
  readonly config: HostsdenyConfig;
  /** The file written (the config's path, resolved against the config file's directory). */
  readonly file: string;
  /** Rewrites made (a batch is one), for tests and stats. */
  writes = 0;
  readonly #context: ActionContext;
  readonly #marker: string;
  readonly #options: HostsdenyActionOptions;
  /** Lines in the block after the last write. */
  #held = 0;

  constructor(
    name: string,
    config: HostsdenyConfig,
    context: ActionContext,
    options: HostsdenyActionOptions = {},
  ) {
    this.name = name;
    this.config = config;
    this.#context = context;
    this.#options = options;
    this.#marker = markerName(name);
    this.file = resolve(context.baseDir ?? process.cwd(), config.file);
  }

  /** Creates the file (mode 0644) when it is missing; rejects when it cannot be written. */
  async start(): Promise<void> {
    await this.#rewrite((text) => (text === null ? '' : null));
  }

  async apply(decisions: readonly Decision[]): Promise<void> {
    const batch = this.#targets(decisions);
    if (batch.live.length + batch.ended.length === 0) return;
    await this.#edit({ add: batch.live, remove: batch.ended });
  }

  async revert(decisions: readonly Decision[]): Promise<void> {
    const batch = this.#targets(decisions);
    if (batch.live.length + batch.ended.length === 0) return;
    await this.#edit({ remove: [...batch.live, ...batch.ended] });
  }

  /** Replaces the block with exactly these bans (the replay at start). */
  async restore(decisions: readonly Decision[]): Promise<void> {
    await this.#edit({ replace: this.#targets(decisions).live });
  }

  /** Removes portcullis's block, and nothing else. */
  async flush(): Promise<void> {
    await this.#edit({ replace: [] });
  }

  /** `false` when the file, or the lines last written, are gone (a restore writes them again). */
  async check(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await this.start();
      return false;
    }
    return this.#held === 0 || parseHostsFile(text, this.#marker).found;
  }

  /** Leaves the lines: tcp_wrappers keeps refusing those clients. */
  async close(): Promise<void> {}

  #targets(decisions: readonly Decision[]) {
    const batch = targetsOf(decisions, this.#context.clock.now());
    if (batch.invalid.length > 0)
      this.#context.logger.error(
        {
          event: 'action-invalid-target',
          action: this.name,
          targets: batch.invalid.slice(0, 10).map((t) => JSON.stringify(t)),
        },
        `action ${this.name}: ${batch.invalid.length} target(s) refused: not a canonical address or network; never written to ${this.file}`,
      );
    return batch;
  }

  async #edit(edit: HostsEdit): Promise<void> {
    let held = this.#held;
    await this.#rewrite((text) => {
      const next = editHostsText(text ?? '', this.#marker, this.config.daemon, edit);
      held = next.targets.length;
      return text === null && next.text === '' ? null : next.text;
    });
    this.#held = held;
  }

  async #rewrite(edit: (text: string | null) => string | null): Promise<void> {
    if (await rewriteLockedFile(this.file, edit, this.#options)) this.writes++;
  }
}

/** The action factory of the registry. */
export function createHostsdenyAction(
  name: string,
  config: HostsdenyConfig,
  context: ActionContext,
  options?: HostsdenyActionOptions,
): HostsdenyAction {
  return new HostsdenyAction(name, config, context, options);
}
