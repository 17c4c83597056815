import { appendFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CommandFollower } from '../../../../src/sources/log/command-follower.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';
import { waitFor } from '../../../helpers/wait-for.js';

/**
 * A journald source resumes after the last handled entry: a fake `journalctl` prints the entries
 * of a JSON-lines "journal" after `--after-cursor=C` (all of them without it), records the
 * arguments it was given, and exits (the follower restarts it).
 */

const dir = mkdtempSync(join(tmpdir(), 'pc-cursor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const journal = join(dir, 'journal.jsonl');
const calls = join(dir, 'calls.txt');
const fake = join(dir, 'journalctl');
writeFileSync(
  fake,
  `#!${process.execPath}
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(calls)}, JSON.stringify(args) + '\\n');
const after = args.find((a) => a.startsWith('--after-cursor='))?.slice(15);
const entries = fs.readFileSync(${JSON.stringify(journal)}, 'utf8').split('\\n').filter(Boolean);
let start = 0;
if (after !== undefined) start = entries.findIndex((e) => JSON.parse(e).__CURSOR === after) + 1;
process.stdout.write(entries.slice(start).map((e) => e + '\\n').join(''));
`,
);
chmodSync(fake, 0o755);

const entry = (n: number) =>
  JSON.stringify({
    __CURSOR: `s=abc;i=${n};b="x"`,
    MESSAGE: `Failed password for root from 192.0.2.${n} port 22 ssh2`,
  });

function follower(store: MemoryStore, seen: string[]): CommandFollower {
  return new CommandFollower({
    argv: [fake, '-f', '-o', 'json'],
    onLines: (batch) => {
      seen.push(...batch.lines.map((line) => JSON.parse(line).MESSAGE as string));
    },
    cursor: { store, id: 'sshd:journal' },
    saveIntervalMs: 20,
    initialBackoffMs: 30,
    maxBackoffMs: 60,
  });
}

describe('journald command source: the cursor', () => {
  it('a restart continues after the last handled entry: nothing counted twice, nothing skipped', async () => {
    writeFileSync(journal, `${[1, 2, 3].map(entry).join('\n')}\n`);
    const store = new MemoryStore();
    const first: string[] = [];
    const a = follower(store, first);
    a.start();
    // The command exits after printing and is restarted: the restart must not print them again.
    await waitFor(() => a.stats.starts >= 3, { timeoutMs: 5000 });
    await a.close();
    expect(first).toHaveLength(3);
    expect((await store.getPosition('sshd:journal'))?.headHash).toBe('journal:s=abc;i=3;b="x"');

    appendFileSync(journal, `${[4, 5].map(entry).join('\n')}\n`);
    const second: string[] = [];
    const b = follower(store, second);
    b.start();
    await waitFor(() => second.length >= 2, { timeoutMs: 5000 });
    await b.close();
    expect(second).toEqual([
      'Failed password for root from 192.0.2.4 port 22 ssh2',
      'Failed password for root from 192.0.2.5 port 22 ssh2',
    ]);
    const args = readFileSync(calls, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[]);
    expect(args[0]).toEqual(['-f', '-o', 'json']);
    // The restarts of the first run, and the second run's start, continued after entry 3.
    expect(args[1]).toContain('--after-cursor=s=abc;i=3;b="x"');
    expect(args.at(-1)).toContain('--after-cursor=s=abc;i=3;b="x"');
    expect((await store.getPosition('sshd:journal'))?.headHash).toBe('journal:s=abc;i=5;b="x"');
  });

  it('a batch that was not handled is not committed: its entries come again after a restart', async () => {
    writeFileSync(journal, `${[7, 8].map(entry).join('\n')}\n`);
    const store = new MemoryStore();
    const failing = new CommandFollower({
      argv: [fake, '-f', '-o', 'json'],
      onLines: () => Promise.reject(new Error('store down')),
      cursor: { store, id: 'j' },
      saveIntervalMs: 20,
      initialBackoffMs: 1000,
    });
    failing.start();
    await waitFor(() => failing.stats.lines >= 2, { timeoutMs: 5000 });
    await failing.close();
    expect(await store.getPosition('j')).toBeUndefined();
    const seen: string[] = [];
    const again = new CommandFollower({
      argv: [fake, '-f', '-o', 'json'],
      onLines: (batch) => {
        seen.push(...batch.lines);
      },
      cursor: { store, id: 'j' },
      initialBackoffMs: 1000,
    });
    again.start();
    await waitFor(() => seen.length >= 2, { timeoutMs: 5000 });
    await again.close();
    expect(seen).toHaveLength(2);
  });

  it('arguments that already say where to start are left alone', async () => {
    writeFileSync(journal, `${entry(9)}\n`);
    writeFileSync(calls, '');
    const store = new MemoryStore();
    await store.setPosition('k', { offset: 0, inode: 0, headHash: 'journal:s=abc;i=1;b="x"' });
    const seen: string[] = [];
    const f = new CommandFollower({
      argv: [fake, '-f', '-o', 'json', '--since=-1h'],
      onLines: (batch) => {
        seen.push(...batch.lines);
      },
      cursor: { store, id: 'k' },
      initialBackoffMs: 1000,
    });
    f.start();
    await waitFor(() => seen.length >= 1, { timeoutMs: 5000 });
    await f.close();
    expect(readFileSync(calls, 'utf8')).not.toContain('--after-cursor');
  });
});
