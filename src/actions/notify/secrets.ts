import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import type { SecretRef } from './options.js';

/** Redaction mark in logs and errors. */
export const REDACTED = '[redacted]';

/**
 * Reads a secret: a file's content (trimmed; a relative path is from the config file's directory)
 * or an environment variable. The message of a failure names where it looked, never the value.
 */
export async function readSecret(
  ref: SecretRef,
  baseDir: string | null,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<string> {
  if ('env' in ref) {
    const value = env[ref.env]?.trim();
    if (value === undefined || value === '')
      throw new PortcullisError(
        ErrorCodes.ACTION_FAILED,
        `environment variable ${ref.env} is not set or empty`,
        {
          help: `export ${ref.env} in the service's environment (e.g. systemd Environment= or EnvironmentFile=)`,
        },
      );
    return value;
  }
  const path = isAbsolute(ref.file) || baseDir === null ? resolve(ref.file) : resolve(baseDir, ref.file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new PortcullisError(ErrorCodes.ACTION_FAILED, `cannot read the secret file ${path} (${code})`, {
      help: 'the file must exist and be readable by the user portcullis runs as',
    });
  }
  const value = text.trim();
  if (value === '') throw new PortcullisError(ErrorCodes.ACTION_FAILED, `the secret file ${path} is empty`);
  return value;
}

/**
 * Removes known secrets from text that may reach a log: each registered value (and its
 * URL-encoded and base64 forms, as they appear in URLs and `Authorization` headers) becomes
 * {@link REDACTED}.
 */
export class Redactor {
  readonly #values = new Set<string>();

  /** Registers a secret; values shorter than 4 characters would redact ordinary words and are ignored. */
  add(value: string | undefined | null): void {
    if (value === undefined || value === null || value.length < 4) return;
    this.#values.add(value);
    this.#values.add(encodeURIComponent(value));
  }

  /** Registers `user:password` as Basic auth sends it. */
  addBasic(user: string, password: string): void {
    this.add(Buffer.from(`${user}:${password}`).toString('base64'));
    this.add(password);
  }

  redact(text: string): string {
    let out = text;
    // Longest first, so a value containing another is removed whole.
    for (const value of [...this.#values].sort((a, b) => b.length - a.length))
      out = out.split(value).join(REDACTED);
    return out;
  }

  /** An error whose message (and cause's) are redacted; keeps `code` and the retry hints. */
  error(error: unknown): Error {
    const message = this.redact(error instanceof Error ? error.message : String(error));
    const out = new Error(message) as Error & Record<string, unknown>;
    if (error instanceof Error) {
      out.name = error.name;
      for (const key of ['code', 'retryable', 'retryAfterMs', 'status'] as const) {
        const value = (error as unknown as Record<string, unknown>)[key];
        if (value !== undefined) out[key] = value;
      }
    }
    return out;
  }
}

/** `https://hooks.slack.com/services/T0/B0/xyz` → `https://hooks.slack.com/…`: a webhook's path is often its secret. */
export function urlForLogs(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname === '/' && url.search === '' ? '/' : '/…'}`;
  } catch {
    return REDACTED;
  }
}
