import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/surfaces/cli/main.ts', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `portcullis ...args` from the sources, to completion; `wrap` is a command to run it under
 * (`['ip', 'netns', 'exec', name]`).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, wrap: string[] = []): Promise<CliResult> {
  return runNode(['--import', 'tsx', CLI, ...args], env, wrap);
}

/** Runs `portcullis ...args` from the sources with `input` written to its standard input. */
export function runCliWithInput(args: string[], input: readonly Buffer[]): Promise<CliResult> {
  return runNode(['--import', 'tsx', CLI, ...args], {}, [], input);
}

/**
 * Runs `node ...args` to completion (a built CLI: `[main.js, ...args]`), as runCli does; `input`
 * is written to its standard input, which is then closed.
 */
export function runNode(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  wrap: string[] = [],
  input?: readonly Buffer[],
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, ...args];
    const [command, ...rest] = [...wrap, ...argv] as [string, ...string[]];
    const child = spawn(command, rest, {
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    if (input !== undefined) {
      // A command that refuses its input stops reading: the rest may meet a closed pipe.
      child.stdin.on('error', () => undefined);
      for (const part of input) child.stdin.write(part);
      child.stdin.end();
    }
  });
}

/** Starts `portcullis ...args` and keeps it running; `output()` is everything it printed so far. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { ...process.env, ...env },
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (status) => resolve(status)));
  return {
    child,
    exited,
    output: () => output,
    /** Waits until the output contains `text`. */
    async waitFor(text: string | RegExp, timeoutMs = 20_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      const found = () => (typeof text === 'string' ? output.includes(text) : text.test(output));
      while (!found()) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${text}; output so far:\n${output}`);
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${text}:\n${output}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}
