/** One journald entry from `journalctl -o json`, reduced to what a filter needs. */
export interface JournalEntry {
  /** The `MESSAGE` field alone. */
  message: string;
  /**
   * The line a fail2ban filter expects, built as fail2ban's systemd backend does:
   * `<_HOSTNAME> <SYSLOG_IDENTIFIER|_COMM>[<SYSLOG_PID|_PID>]: <MESSAGE>` (parts that are absent are
   * left out).
   */
  text: string;
  /** `__REALTIME_TIMESTAMP` (µs in the journal) in ms since the epoch; `undefined` when absent. */
  timeMs: number | undefined;
}

const bytes = new TextDecoder('utf-8', { fatal: false });

/**
 * Parses one line of `journalctl -o json` output. Returns `undefined` for a line that is not a JSON
 * object or has no `MESSAGE`. Binary fields (journald writes them as arrays of byte values) are
 * decoded as UTF-8; a field with several values is joined with ` | ` as fail2ban does.
 */
export function parseJournalLine(line: string): JournalEntry | undefined {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return undefined;
  const fields = entry as Record<string, unknown>;
  const message = fieldText(fields.MESSAGE);
  if (message === undefined) return undefined;
  const parts: string[] = [];
  const host = fieldText(fields._HOSTNAME);
  if (host) parts.push(host);
  const ident = fieldText(fields.SYSLOG_IDENTIFIER) || fieldText(fields._COMM);
  if (ident) {
    const pid = fieldText(fields.SYSLOG_PID) || fieldText(fields._PID);
    parts.push(pid ? `${ident}[${pid}]:` : `${ident}:`);
  }
  parts.push(message);
  const micros = Number(fieldText(fields.__REALTIME_TIMESTAMP));
  return {
    message,
    text: parts.join(' '),
    timeMs: Number.isFinite(micros) && micros > 0 ? Math.floor(micros / 1000) : undefined,
  };
}

/**
 * True when a command's arguments ask for journald JSON output: `-o json`, `-ojson`,
 * `--output json` or `--output=json`.
 */
export function isJournalJsonCommand(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if ((arg === '-o' || arg === '--output') && argv[i + 1] === 'json') return true;
    if (arg === '-ojson' || arg === '--output=json') return true;
  }
  return false;
}

function fieldText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (!Array.isArray(value)) return undefined;
  if (value.every((item) => typeof item === 'number'))
    return bytes.decode(Uint8Array.from(value as number[]));
  const texts = value.map(fieldText).filter((text): text is string => text !== undefined);
  return texts.length === 0 ? undefined : texts.join(' | ');
}
