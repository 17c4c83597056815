import { execFile } from 'node:child_process';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';

/**
 * Runs one system tool (`ipset`, `iptables`, `ip6tables-restore`, ...) with these arguments, never
 * through a shell, `input` written to its stdin; resolves stdout. Injected in tests to count and
 * inspect invocations.
 */
export type ToolExec = (binary: string, args: readonly string[], input?: string) => Promise<string>;

/** How long one call may take, ms (an `ipset restore` of 100k lines takes well under a second). */
const TOOL_TIMEOUT_MS = 60_000;

/** Which Debian package ships a tool, for the error's help text. */
const PACKAGE_OF: Readonly<Record<string, string>> = {
  ipset: 'ipset',
  iptables: 'iptables',
  ip6tables: 'iptables',
  'iptables-restore': 'iptables',
  'ip6tables-restore': 'iptables',
  nginx: 'nginx',
};

/** The real tools: `execFile(binary, args)`; a non-zero exit rejects with its stderr. */
export function toolExec(): ToolExec {
  return (binary, args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        binary,
        [...args],
        { maxBuffer: 512 * 1024 * 1024, timeout: TOOL_TIMEOUT_MS, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (error === null) return resolve(stdout);
          const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
          const detail = String(stderr).trim().slice(0, 600) || error.message;
          const pkg = PACKAGE_OF[binary];
          reject(
            new PortcullisError(
              ErrorCodes.ACTION_FAILED,
              missing ? `${binary} not found` : `${binary} ${args.join(' ')}: ${detail}`,
              { cause: error, help: missing && pkg !== undefined ? `apt-get install ${pkg}` : undefined },
            ),
          );
        },
      );
      // A failed spawn (ENOENT) reports through the callback; the stdin error is that same failure.
      child.stdin?.on('error', () => {});
      child.stdin?.end(input ?? '');
    });
}
