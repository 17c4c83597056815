import type { ChildProcess } from 'node:child_process';
import { CLI } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait-for.js';
import type { NetnsPair } from './netns.js';

/** `portcullis run -c FILE` inside a namespace, restartable, with everything it printed. */
export interface NsDaemon {
  log(): string;
  start(): Promise<void>;
  /** SIGTERM (a clean stop) or SIGKILL; bounded wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function nsDaemon(pair: NetnsPair, ns: string, configFile: string): NsDaemon {
  let child: ChildProcess | undefined;
  let output = '';
  return {
    log: () => output,
    async start() {
      output = '';
      const started = pair.spawn(ns, [process.execPath, '--import', 'tsx', CLI, 'run', '-c', configFile]);
      child = started;
      started.stdout?.on('data', (c: Buffer) => {
        output += c.toString();
      });
      started.stderr?.on('data', (c: Buffer) => {
        output += c.toString();
      });
      await waitFor(() => output.includes('portcullis started') || started.exitCode !== null, {
        timeoutMs: 20_000,
        intervalMs: 100,
        message: () => `portcullis to start (log: ${output})`,
      });
      if (started.exitCode !== null) throw new Error(`portcullis exited ${started.exitCode}: ${output}`);
    },
    async stop(signal = 'SIGTERM') {
      const running = child;
      child = undefined;
      if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill(signal);
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    },
  };
}

/** `portcullis ...args` run to completion inside a namespace; resolves stdout (rejects on a non-zero exit). */
export function nsCli(pair: NetnsPair, ns: string, args: readonly string[]): Promise<string> {
  return pair.exec(ns, [process.execPath, '--import', 'tsx', CLI, ...args]);
}
