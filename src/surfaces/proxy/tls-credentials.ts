import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '../../core/errors.js';

/**
 * The certificate and key of the TLS listeners, read from PEM files. `reload()` (SIGHUP) reads
 * them again; new connections use the new pair, open ones keep theirs. A pair that does not load
 * leaves the previous one in place.
 */
export class TlsCredentials {
  readonly certPath: string;
  readonly keyPath: string;
  #context: SecureContext;

  /** Throws a {@link ConfigError} naming `proxy.tls` when the files cannot be read or do not match. */
  constructor(certPath: string, keyPath: string) {
    this.certPath = certPath;
    this.keyPath = keyPath;
    this.#context = this.#load();
  }

  /** The context new connections are given. */
  get context(): SecureContext {
    return this.#context;
  }

  /** Re-reads both files. Throws (keeping the previous pair) when they do not load. */
  reload(): void {
    this.#context = this.#load();
  }

  #load(): SecureContext {
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(this.certPath);
    } catch (error) {
      throw new ConfigError([
        `proxy.tls.cert: cannot read ${this.certPath}: ${(error as NodeJS.ErrnoException).code}`,
      ]);
    }
    try {
      key = readFileSync(this.keyPath);
    } catch (error) {
      throw new ConfigError([
        `proxy.tls.key: cannot read ${this.keyPath}: ${(error as NodeJS.ErrnoException).code}`,
      ]);
    }
    try {
      return createSecureContext({ cert, key });
    } catch (error) {
      throw new ConfigError([`proxy.tls: ${this.certPath} / ${this.keyPath}: ${(error as Error).message}`]);
    }
  }
}
