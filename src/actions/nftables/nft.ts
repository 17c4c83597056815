import { execFile } from 'node:child_process';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';

/**
 * Runs `nft` with these arguments (never through a shell), `input` on stdin; resolves stdout.
 * Injected in tests to count and inspect invocations.
 */
export type NftExec = (args: readonly string[], input?: string) => Promise<string>;

/** How long one `nft` call may take, ms (100k elements take well under a second). */
const NFT_TIMEOUT_MS = 60_000;

/** The real `nft`: `execFile(binary, args)`, the script written to its stdin. */
export function nftExec(binary = 'nft'): NftExec {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        binary,
        [...args],
        { maxBuffer: 512 * 1024 * 1024, timeout: NFT_TIMEOUT_MS, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (error === null) return resolve(stdout);
          const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
          const detail = String(stderr).trim().slice(0, 600) || error.message;
          reject(
            new PortcullisError(
              ErrorCodes.ACTION_FAILED,
              missing ? `${binary} not found: install nftables` : `${binary} ${args.join(' ')}: ${detail}`,
              { cause: error, help: missing ? 'apt-get install nftables' : undefined },
            ),
          );
        },
      );
      // A failed spawn (ENOENT) reports through the callback; the stdin error is that same failure.
      child.stdin?.on('error', () => {});
      child.stdin?.end(input ?? '');
    });
}
