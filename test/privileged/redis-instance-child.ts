// Run inside a network namespace: `portcullis run` (runFromFile) on the config given as argv[2],
// driven over stdin: `ban <target>` / `unban <target>` lines, each answered `done <target>` once
// this instance's guard has decided it. Prints `ready` once started.

import { createInterface } from 'node:readline';
import { runFromFile } from '../../src/surfaces/cli/run.js';

const instance = await runFromFile(process.argv[2] as string);
console.log('ready');
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [verb, target] = line.trim().split(' ');
  if (target === undefined) return;
  const done = verb === 'ban' ? instance.guard.ban(target, { duration: '1h' }) : instance.guard.unban(target);
  done.then(
    () => console.log(`done ${target}`),
    (error: unknown) => console.log(`error ${target} ${String(error)}`),
  );
});
lines.on('close', () => {
  void instance.stop().then(() => process.exit(0));
});
