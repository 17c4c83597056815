import fs from 'node:fs';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { detach } from '../../src/core/detach.js';
import { createGuard } from '../../src/guard.js';
import { startLogJails } from '../../src/sources/log/log-jail.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { logJailSettled, makeTempDir } from '../helpers/log-files.js';

// What a live jail keeps of the lines it read: an address, a user name or a session id captured
// from a line was a view into the 64 KiB block the line was decoded from (V8 substrings), and
// kept as a failure window's key it kept the whole block alive.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

let dir: string;
const closers: (() => Promise<void>)[] = [];
beforeEach(() => {
  dir = makeTempDir('portcullis-jail-memory-');
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

describe('what a log jail keeps of its lines', () => {
  it('detach gives an equal string that does not keep its parent alive', () => {
    const before = heapAfterGc();
    const kept: string[] = [];
    for (let i = 0; i < 500; i++) {
      const block = `${'x'.repeat(70_000)}${i} from 203.0.113.${100 + (i % 100)} port 22`;
      const ip = (/from (\S+)/.exec(block) as RegExpExecArray)[1] as string;
      kept.push(detach(ip));
      expect(kept[i]).toBe(ip);
    }
    // 500 parents of 70 KB: 35 MB if any were kept.
    expect(heapAfterGc() - before).toBeLessThan(8 * MiB);
    expect(detach('')).toBe('');
    expect(detach('2001:db8::1')).toBe('2001:db8::1');
  });

  it('after draining 600 offenders each in its own 64 KiB of log, the blocks read are not kept', async () => {
    // 600 failures from distinct addresses (IPv4 of 13+ characters, IPv6, user names of 13+),
    // each followed by ~64 KiB of lines the filter passes over: each failure is decoded in a block
    // of its own. Kept blocks would be 600 x 64 KiB = 38 MiB.
    const file = path.join(dir, 'auth.log');
    const filler = `Dec  1 12:00:00 gate kernel: [${'0'.repeat(1500)}] noise\n`.repeat(44);
    const out = fs.openSync(file, 'w');
    for (let i = 0; i < 600; i++) {
      const ip =
        i % 3 === 0
          ? `2001:db8:${(i + 0x1000).toString(16)}::${(i + 7).toString(16)}`
          : `203.0.${100 + (i >> 7)}.${100 + (i & 0x7f)}`;
      fs.writeSync(
        out,
        `Dec  1 12:00:00 gate sshd[${4000 + i}]: Failed password for invalid user administrator${i} from ${ip} port ${30000 + i} ssh2\n`,
      );
      fs.writeSync(out, filler);
    }
    fs.closeSync(out);
    expect(fs.statSync(file).size).toBeGreaterThan(36 * MiB);

    const guard = await createGuard(
      resolveConfig(
        {
          jails: {
            sshd: {
              filter: 'sshd',
              source: { log: file, start: 'beginning' },
              maxretry: 1_000_000,
              findtime: '3650d',
              ignoreip: [],
              ignoreself: false,
              // Keeps the matched lines too (the e-mail shows them): copies, cut to 1024 characters.
              actions: [{ command: { ban: ['true', '<matches>'], scope: 'local' } }],
            },
          },
        },
        { env: {} },
      ),
      { store: new MemoryStore(), env: {} },
    );
    closers.push(() => guard.close());
    const before = heapAfterGc();
    const logJails = await startLogJails(guard, { pollIntervalMs: 50 });
    closers.push(() => logJails.close());
    await logJailSettled(logJails, 'sshd', 600 * 45, 60_000);
    expect(logJails.stats().sshd?.reports).toBe(600);
    const grown = heapAfterGc() - before;
    expect(grown, `heap grew ${(grown / MiB).toFixed(1)} MiB`).toBeLessThan(12 * MiB);
  }, 90_000);
});
