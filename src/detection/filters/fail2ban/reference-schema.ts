import type * as Z from 'zod';

/**
 * How a jail names a fail2ban filter:
 *
 * - `filter: fail2ban:dovecot` or `fail2ban:dovecot[mode=aggressive]` — looked up as
 *   `$PORTCULLIS_FAIL2BAN_DIR/filter.d/dovecot.conf` (default `/etc/fail2ban`);
 * - `filter: { fail2ban: /etc/fail2ban/filter.d/sshd.conf, mode: aggressive, unsupported: skip }`
 *   — a name or a path, with the options below (Debian's sshd.conf has regexes RE2 cannot run,
 *   so it loads only with `unsupported: skip`, or use the bundled `sshd`).
 *
 * Built with the zod the caller passes: reference.ts checks a reference with
 * {@link quickFail2banFilterSpec} and loads zod only for one that check does not accept, to say
 * what is wrong.
 */
export function fail2banFilterSchemaOf(z: typeof Z) {
  return z
    .strictObject({
      fail2ban: z
        .string()
        .min(1)
        .describe('A fail2ban filter name (sshd, looked up in <fail2ban_dir>/filter.d) or a .conf path.'),
      mode: z
        .string()
        .optional()
        .describe("The filter's mode parameter (sshd: normal, ddos, extra, aggressive)."),
      params: z
        .record(z.string(), z.string())
        .optional()
        .describe("Other filter parameters, as fail2ban's filter = name[key=value]."),
      fail2ban_dir: z
        .string()
        .optional()
        .describe('Where names are looked up. Default $PORTCULLIS_FAIL2BAN_DIR or /etc/fail2ban.'),
      logtype: z.enum(['file', 'journal']).optional().describe('common.conf log type. Default file.'),
      unsupported: z
        .enum(['refuse', 'skip'])
        .optional()
        .describe(
          'A regex RE2 cannot run: refuse the filter (default) or leave that failregex out, with a warning.',
        ),
    })
    .describe('A fail2ban filter file, read in place.');
}

export type Fail2banFilterSpec = Z.output<ReturnType<typeof fail2banFilterSchemaOf>>;

const KEYS = new Set(['fail2ban', 'mode', 'params', 'fail2ban_dir', 'logtype', 'unsupported']);

/**
 * `raw` as a {@link Fail2banFilterSpec} when it plainly is one, else `undefined` (the zod schema
 * then decides and names the problems). Never accepts what the schema refuses. Returns `raw`.
 */
export function quickFail2banFilterSpec(raw: unknown): Fail2banFilterSpec | undefined {
  if (!isPlainObject(raw)) return undefined;
  for (const key of Object.keys(raw)) if (!KEYS.has(key)) return undefined;
  if (typeof raw.fail2ban !== 'string' || raw.fail2ban.length === 0) return undefined;
  if (!optionalString(raw.mode) || !optionalString(raw.fail2ban_dir)) return undefined;
  if (raw.logtype !== undefined && raw.logtype !== 'file' && raw.logtype !== 'journal') return undefined;
  if (raw.unsupported !== undefined && raw.unsupported !== 'refuse' && raw.unsupported !== 'skip')
    return undefined;
  const params = raw.params;
  if (params !== undefined) {
    if (!isPlainObject(params)) return undefined;
    for (const [key, value] of Object.entries(params))
      if (key === '__proto__' || typeof value !== 'string') return undefined;
  }
  return raw as Fail2banFilterSpec;
}

function optionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Reflect.ownKeys(value).length === Object.keys(value).length;
}
