import type { Source, SourceContext, SourceStats } from './source.js';

/**
 * Builds the sources one kind of input needs for the configuration in force (none when the
 * configuration has no such input). Called at start and again on each reload that restarts them.
 */
export interface SourceFactory {
  /** `log`, `proxy`, `tcp`, `packets`. */
  readonly kind: string;
  create(context: SourceContext): Source[] | Promise<Source[]>;
}

/**
 * Supervises the running sources: starts them in the order of the factories (log jails before
 * the proxy, so its first request finds them), closes them in reverse (the proxy first: no new
 * request may be judged by a closing guard; then the log jails, whose last reports must reach the
 * store), and on reload adopts the new configuration in place where a source can, else restarts it.
 */
export class SourceRegistry {
  readonly #factories: readonly SourceFactory[];
  readonly #context: SourceContext;
  #running: { factory: SourceFactory; sources: Source[] }[] = [];
  #closed = false;

  constructor(context: SourceContext, factories: readonly SourceFactory[]) {
    this.#context = context;
    this.#factories = factories;
  }

  /** The running sources, in start order. */
  get sources(): readonly Source[] {
    return this.#running.flatMap((entry) => entry.sources);
  }

  /** Per source name. */
  stats(): Record<string, SourceStats> {
    return Object.fromEntries(this.sources.map((source) => [source.name, source.stats()]));
  }

  /** Starts every source; rejects, having closed what it started, when one cannot start. */
  async start(): Promise<void> {
    try {
      for (const factory of this.#factories) {
        const entry = { factory, sources: [] as Source[] };
        this.#running.push(entry);
        for (const source of await factory.create(this.#context)) {
          await source.start().catch(async (error: unknown) => {
            await source.close().catch(() => {});
            throw error;
          });
          entry.sources.push(source);
        }
      }
    } catch (error) {
      await this.close();
      this.#closed = false;
      throw error;
    }
  }

  /**
   * Applies the configuration the context now holds: each source that can adopt it in place does;
   * the others are closed and built again. Rejects when a new source cannot start (the caller
   * restores the previous configuration and reloads again).
   */
  async reload(): Promise<void> {
    for (const entry of this.#running) {
      const kept: Source[] = [];
      const restart: Source[] = [];
      for (const source of entry.sources) {
        if (source.reload !== undefined && (await source.reload())) kept.push(source);
        else restart.push(source);
      }
      // Built again even when every source was kept: the new configuration may add one (a new
      // tcp: listener); the ones kept are skipped by name.
      await Promise.all(restart.map((source) => source.close()));
      const keptNames = new Set(kept.map((source) => source.name));
      entry.sources = kept;
      for (const source of await entry.factory.create(this.#context)) {
        if (keptNames.has(source.name)) continue;
        await source.start().catch(async (error: unknown) => {
          await source.close().catch(() => {});
          throw error;
        });
        entry.sources.push(source);
      }
    }
  }

  /** Closes every source, the last started first. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of [...this.#running].reverse()) {
      await Promise.all(entry.sources.map((source) => source.close().catch(() => {})));
    }
    this.#running = [];
  }
}
