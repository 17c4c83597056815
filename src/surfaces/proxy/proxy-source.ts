import type { SourceFactory } from '../../sources/registry.js';
import type { Source, SourceContext, SourceStats } from '../../sources/source.js';
import type { PortcullisProxy } from './proxy.js';

/**
 * The reverse proxy of the configuration's `proxy:` section as a source. A reload adopts new
 * jails and TLS certificates in place; other proxy settings take effect after a restart (a
 * warning says so).
 */
export function proxySource(): SourceFactory {
  return {
    kind: 'proxy',
    create(context: SourceContext): Source[] {
      return context.config.proxy === undefined ? [] : [new ProxySource(context)];
    },
  };
}

/** The running proxy of a registry, if any (for the CLI's start message and SIGUSR1). */
export function runningProxy(sources: readonly Source[]): PortcullisProxy | undefined {
  for (const source of sources) if (source instanceof ProxySource) return source.proxy;
  return undefined;
}

class ProxySource implements Source {
  readonly kind = 'proxy';
  readonly name = 'proxy';
  readonly #context: SourceContext;
  #settings: string;
  proxy: PortcullisProxy | undefined;

  constructor(context: SourceContext) {
    this.#context = context;
    this.#settings = JSON.stringify(context.config.proxy);
  }

  async start(): Promise<void> {
    const config = this.#context.config.proxy;
    if (config === undefined) return;
    const { createProxy } = await import('./proxy.js');
    this.proxy = await createProxy(this.#context, { ...config, logger: this.#context.logger });
  }

  async reload(): Promise<boolean> {
    if (this.proxy === undefined) return false;
    this.proxy.reloadTls();
    if (JSON.stringify(this.#context.config.proxy) !== this.#settings) {
      this.#context.logger.warn(
        { event: 'reload' },
        'proxy settings changed; they take effect only after a restart',
      );
    }
    return true;
  }

  stats(): SourceStats {
    return this.proxy === undefined
      ? {}
      : { ...this.proxy.stats, pipeline: { ...this.proxy.pipeline.stats } };
  }

  async close(): Promise<void> {
    await this.proxy?.close();
  }
}
