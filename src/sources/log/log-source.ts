import type { SourceFactory } from '../registry.js';
import type { Source, SourceContext, SourceStats } from '../source.js';
import { type LogJails, type LogJailsOptions, startLogJails } from './log-jail.js';

/**
 * The log jails of the configuration (files, globs, commands) as one source: built and started
 * together, restarted together on reload (saved positions mean no line is lost or read twice).
 */
export function logSources(options: Omit<LogJailsOptions, 'logger'> = {}): SourceFactory {
  return {
    kind: 'log',
    create(context: SourceContext): Source[] {
      const hasLogJails = context.config.jails.some(
        (jail) => jail.enabled && (jail.source.kind === 'log' || jail.source.kind === 'command'),
      );
      return hasLogJails ? [new LogSource(context, options)] : [];
    },
  };
}

class LogSource implements Source {
  readonly kind = 'log';
  readonly name = 'log';
  readonly #context: SourceContext;
  readonly #options: Omit<LogJailsOptions, 'logger'>;
  #jails: LogJails | undefined;

  constructor(context: SourceContext, options: Omit<LogJailsOptions, 'logger'>) {
    this.#context = context;
    this.#options = options;
  }

  async start(): Promise<void> {
    this.#jails = await startLogJails(this.#context, { ...this.#options, logger: this.#context.logger });
  }

  stats(): SourceStats {
    return this.#jails?.stats() ?? {};
  }

  async close(): Promise<void> {
    await this.#jails?.close();
  }
}
