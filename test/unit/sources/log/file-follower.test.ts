import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../../../src/core/logger.js';
import {
  FileFollower,
  type FileFollowerOptions,
  rotatedPositionId,
} from '../../../../src/sources/log/file-follower.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';
import type { LogPosition } from '../../../../src/stores/store.js';
import { exactlyOnce, makeTempDir, numberedLines, numbersIn } from '../../../helpers/log-files.js';
import { waitFor } from '../../../helpers/wait-for.js';

interface Logged {
  level: string;
  message: string;
}

let dir: string;
let followers: FileFollower[];
let logged: Logged[];
const logger: Logger = {
  debug: (_fields, message = '') => logged.push({ level: 'debug', message }),
  info: (_fields, message = '') => logged.push({ level: 'info', message }),
  warn: (_fields, message = '') => logged.push({ level: 'warn', message }),
  error: (_fields, message = '') => logged.push({ level: 'error', message }),
};

beforeEach(() => {
  dir = makeTempDir();
  followers = [];
  logged = [];
});
afterEach(async () => {
  await Promise.all(followers.map((follower) => follower.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});

function follow(
  file: string,
  options: Partial<FileFollowerOptions> = {},
): { follower: FileFollower; lines: string[] } {
  const lines: string[] = [];
  const follower = new FileFollower({
    path: file,
    onLines: (batch) => {
      lines.push(...batch.lines);
    },
    pollIntervalMs: 50,
    retryIntervalMs: 100,
    saveIntervalMs: 20,
    drainGraceMs: 300,
    logger,
    ...options,
  });
  followers.push(follower);
  return { follower, lines };
}

describe('FileFollower: where it starts', () => {
  it('start: end reads only lines written after the start', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, 'old 1\nold 2\n');
    const { follower, lines } = follow(file, { start: 'end' });
    await follower.start();
    fs.appendFileSync(file, 'new 1\nnew 2\n');
    await waitFor(() => lines.length >= 2);
    expect(lines).toEqual(['new 1', 'new 2']);
  });

  it('start: end still delivers a line that was half written at the start', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, 'old\nhalf ');
    const { follower, lines } = follow(file, { start: 'end' });
    await follower.start();
    fs.appendFileSync(file, 'written\n');
    await waitFor(() => lines.length >= 1);
    expect(lines).toEqual(['half written']);
  });

  it('start: beginning reads the whole file', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, 'one\ntwo\n');
    const { follower, lines } = follow(file, { start: 'beginning' });
    await follower.start();
    await waitFor(() => lines.length >= 2);
    expect(lines).toEqual(['one', 'two']);
  });

  it('waits for a file that does not exist yet (logging it once) and reads it from its start', async () => {
    const file = path.join(dir, 'later.log');
    const { follower, lines } = follow(file, { start: 'end' });
    await follower.start();
    await waitFor(() => logged.some((entry) => entry.message.includes('does not exist')), {
      message: 'the follower to notice the file is missing',
    });
    fs.writeFileSync(file, 'first\nsecond\n');
    await waitFor(() => lines.length >= 2);
    expect(lines).toEqual(['first', 'second']);
    expect(logged.filter((entry) => entry.message.includes('does not exist'))).toHaveLength(1);
  });
});

describe('FileFollower: line content', () => {
  it('holds a partial last line until its newline arrives', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, '');
    const { follower, lines } = follow(file);
    await follower.start();
    fs.appendFileSync(file, 'partial');
    await waitFor(() => follower.stats.bytes >= 'partial'.length, { message: 'the partial line to be read' });
    expect(lines).toEqual([]);
    fs.appendFileSync(file, ' line\n');
    await waitFor(() => lines.length >= 1);
    expect(lines).toEqual(['partial line']);
  });

  it('cuts a 1 MB line to maxLineLength and reads the next line intact', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, '');
    const { follower, lines } = follow(file, { chunkSize: 65_536 });
    await follower.start();
    const fd = fs.openSync(file, 'a');
    // Written in pieces so the follower sees the long line grow across several reads.
    for (let i = 0; i < 16; i++) fs.writeSync(fd, Buffer.alloc(65_536, 0x78));
    fs.writeSync(fd, 'END\nnext line\n');
    fs.closeSync(fd);
    await waitFor(() => lines.length >= 2);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('x'.repeat(16_384));
    expect(lines[1]).toBe('next line');
    expect(follower.stats.truncatedLines).toBe(1);
    expect(
      logged.some((entry) => entry.level === 'warn' && entry.message.includes('longer than 16384')),
    ).toBe(true);
  });

  it('decodes invalid UTF-8 as U+FFFD and passes NUL bytes', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(
      file,
      Buffer.from([0x62, 0x61, 0x64, 0xc3, 0x28, 0x0a, 0x6e, 0x75, 0x6c, 0x00, 0x21, 0x0a, 0x6f, 0x6b, 0x0a]),
    );
    const { follower, lines } = follow(file, { start: 'beginning' });
    await follower.start();
    await waitFor(() => lines.length >= 3);
    expect(lines).toEqual(['bad\uFFFD(', 'nul\0!', 'ok']);
  });
});

describe('FileFollower: rotation', () => {
  it('rename + create: reads the rest of the old file, including lines written after the rename, then the new one', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, '');
    const { follower, lines } = follow(file);
    await follower.start();
    const fd = fs.openSync(file, 'a');
    fs.writeSync(fd, numberedLines(1, 10));
    await waitFor(() => lines.length >= 10);
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, '');
    fs.writeSync(fd, numberedLines(11, 15)); // the writer has not reopened yet
    fs.closeSync(fd);
    fs.appendFileSync(file, numberedLines(16, 20));
    await waitFor(() => lines.length >= 20);
    expect(exactlyOnce(numbersIn(lines), 20)).toBeUndefined();
    expect(follower.stats.rotations).toBe(1);
    expect(logged.some((entry) => entry.message.includes('was rotated'))).toBe(true);
  });

  it('copytruncate: reads the file again from its start', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, numberedLines(1, 10));
    const { follower, lines } = follow(file, { start: 'beginning' });
    await follower.start();
    await waitFor(() => lines.length >= 10);
    fs.copyFileSync(file, `${file}.1`);
    fs.truncateSync(file, 0);
    fs.appendFileSync(file, numberedLines(11, 12));
    await waitFor(() => lines.length >= 12);
    expect(exactlyOnce(numbersIn(lines), 12)).toBeUndefined();
  });

  it('a file replaced under the same inode by longer content is read from 0 (first-line hash changed)', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, numberedLines(1, 3));
    const { follower, lines } = follow(file, { start: 'beginning', watch: false, pollIntervalMs: 300 });
    await follower.start();
    await waitFor(() => lines.length >= 3);
    const inode = fs.statSync(file).ino;
    // Same inode, and already longer than what was read by the time the follower looks again.
    fs.writeFileSync(file, numberedLines(4, 20, Date.now() + 1000));
    expect(fs.statSync(file).ino).toBe(inode);
    await waitFor(() => lines.length >= 20);
    // Settled once the follower has read a later write: a wrong re-read from 0 would come first.
    fs.appendFileSync(file, 'marker\n');
    await waitFor(() => lines.includes('marker'), { message: 'the marker line' });
    expect(exactlyOnce(numbersIn(lines), 20)).toBeUndefined();
    expect(logged.some((entry) => entry.message === `${file} was replaced; reading it from the start`)).toBe(
      true,
    );
  });

  it('a file deleted while open: drains what its writer still adds, then reads the recreated file from 0', async () => {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, '');
    const { follower, lines } = follow(file);
    await follower.start();
    const fd = fs.openSync(file, 'a');
    fs.writeSync(fd, numberedLines(1, 5));
    await waitFor(() => lines.length >= 5);
    fs.unlinkSync(file);
    fs.writeSync(fd, numberedLines(6, 8));
    await waitFor(() => lines.length >= 8);
    fs.closeSync(fd);
    await waitFor(() => logged.some((entry) => entry.message.includes('was deleted')));
    fs.writeFileSync(file, numberedLines(9, 10));
    await waitFor(() => lines.length >= 10);
    expect(exactlyOnce(numbersIn(lines), 10)).toBeUndefined();
  });

  it('survives its directory being removed and created again', async () => {
    const sub = path.join(dir, 'nginx');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'access.log');
    fs.writeFileSync(file, '');
    const { follower, lines } = follow(file);
    await follower.start();
    fs.appendFileSync(file, 'one\n');
    await waitFor(() => lines.length >= 1);
    fs.rmSync(sub, { recursive: true });
    await waitFor(() => logged.some((entry) => entry.message.includes('was deleted')));
    fs.mkdirSync(sub);
    fs.writeFileSync(file, 'two\n');
    await waitFor(() => lines.length >= 2);
    fs.appendFileSync(file, 'three\n');
    await waitFor(() => lines.length >= 3);
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('an unreadable path (a directory, which fails even for root) is a clear error, retried until it is a file', async () => {
    const file = path.join(dir, 'a.log');
    fs.mkdirSync(file);
    const { follower, lines } = follow(file, { start: 'end' });
    await follower.start();
    await waitFor(() => logged.some((entry) => entry.level === 'error'));
    expect(logged.find((entry) => entry.level === 'error')?.message).toBe(
      `cannot read ${file}: it is a directory; retrying every 100ms`,
    );
    // Kept: time passing is the point, a few 100 ms retries (a slow machine makes fewer, never a false failure).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(logged.filter((entry) => entry.level === 'error')).toHaveLength(1);
    fs.rmdirSync(file);
    fs.writeFileSync(file, 'now readable\n');
    await waitFor(() => lines.length >= 1);
    expect(lines).toEqual(['now readable']);
    expect(logged.some((entry) => entry.message === `${file} is readable again`)).toBe(true);
  });
});

describe('FileFollower: positions', () => {
  it('close() waits for pending batches, saves the position, and a restart resumes without loss or repeat', async () => {
    const file = path.join(dir, 'a.log');
    const store = new MemoryStore();
    fs.writeFileSync(file, numberedLines(1, 5000));
    const seen: string[] = [];
    const slowHandler = (batch: { lines: readonly string[] }) =>
      new Promise<void>((resolve) =>
        // Kept: a deliberately slow handler, so close() finds batches in flight.
        setTimeout(() => {
          seen.push(...batch.lines);
          resolve();
        }, 5),
      );
    const first = follow(file, {
      start: 'beginning',
      chunkSize: 4096,
      onLines: slowHandler,
      positions: { store, id: 'jail:a' },
    });
    await first.follower.start();
    await waitFor(() => seen.length >= 1000);
    await first.follower.close();
    const stoppedAt = seen.length;
    expect(stoppedAt).toBeLessThan(5000);
    const saved = await store.getPosition('jail:a');
    expect(saved?.offset).toBe(Buffer.byteLength(numberedLines(1, stoppedAt)));

    fs.appendFileSync(file, numberedLines(5001, 6000));
    const second = follow(file, { start: 'end', onLines: slowHandler, positions: { store, id: 'jail:a' } });
    await second.follower.start();
    await waitFor(() => seen.length >= 6000);
    await second.follower.close();
    expect(exactlyOnce(numbersIn(seen), 6000)).toBeUndefined();
    expect((await store.getPosition('jail:a'))?.offset).toBe(fs.statSync(file).size);
  });

  it('a partial last line at close is read whole after the restart', async () => {
    const file = path.join(dir, 'a.log');
    const store = new MemoryStore();
    fs.writeFileSync(file, 'one\ntw');
    const first = follow(file, { start: 'beginning', positions: { store, id: 'p' } });
    await first.follower.start();
    await waitFor(() => first.lines.length >= 1);
    await first.follower.close();
    expect((await store.getPosition('p'))?.offset).toBe(4);
    fs.appendFileSync(file, 'o\n');
    const second = follow(file, { positions: { store, id: 'p' } });
    await second.follower.start();
    await waitFor(() => second.lines.length >= 1);
    expect([...first.lines, ...second.lines]).toEqual(['one', 'two']);
  });

  it('start: end saves its starting point at once, so lines written while stopped are read next time', async () => {
    const file = path.join(dir, 'a.log');
    const store = new MemoryStore();
    fs.writeFileSync(file, 'before\n');
    const first = follow(file, { start: 'end', positions: { store, id: 'p' } });
    await first.follower.start();
    await first.follower.close();
    fs.appendFileSync(file, 'while stopped\n');
    const second = follow(file, { start: 'end', positions: { store, id: 'p' } });
    await second.follower.start();
    await waitFor(() => second.lines.length >= 1);
    expect(second.lines).toEqual(['while stopped']);
  });

  it('a file rotated while stopped (other inode) is read from 0', async () => {
    const file = path.join(dir, 'a.log');
    const store = new MemoryStore();
    fs.writeFileSync(file, numberedLines(1, 3));
    const first = follow(file, { start: 'beginning', positions: { store, id: 'p' } });
    await first.follower.start();
    await waitFor(() => first.lines.length >= 3);
    await first.follower.close();
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, numberedLines(4, 5));
    const second = follow(file, { start: 'end', positions: { store, id: 'p' } });
    await second.follower.start();
    await waitFor(() => second.lines.length >= 2);
    expect(numbersIn(second.lines)).toEqual([4, 5]);
    expect(logged.some((entry) => entry.message.includes('changed while stopped'))).toBe(true);
  });

  it('a rejected batch stops the position from advancing past it', async () => {
    const file = path.join(dir, 'a.log');
    const store = new MemoryStore();
    fs.writeFileSync(file, 'ok 1\nbad\nok 2\n');
    const follower = new FileFollower({
      path: file,
      start: 'beginning',
      chunkSize: 5,
      pollIntervalMs: 50,
      saveIntervalMs: 10,
      positions: { store, id: 'p' },
      onLines: async (batch) => {
        if (batch.lines.includes('bad')) throw new Error('not counted');
      },
      logger,
    });
    followers.push(follower);
    await follower.start();
    await waitFor(() => follower.stats.lines >= 3);
    await follower.close();
    expect((await store.getPosition('p'))?.offset).toBe(5);
  });
});

describe('FileFollower: a rotated file being read keeps its position across a restart', () => {
  const store = () => new MemoryStore();
  /** A follower with a long drain grace, so a rotated file is still being read when it stops. */
  const restartable = (file: string, positions: FileFollowerOptions['positions'], grace = 30_000) =>
    follow(file, { start: 'beginning', drainGraceMs: grace, positions });

  it('a stop while the rotated file still gets lines: the restart reads the rest of both, each line once', async () => {
    const file = path.join(dir, 'auth.log');
    const positions = { store: store(), id: 'j:auth' };
    fs.writeFileSync(file, '');
    const first = restartable(file, positions);
    await first.follower.start();
    const fd = fs.openSync(file, 'a');
    fs.writeSync(fd, numberedLines(1, 10));
    await waitFor(() => first.lines.length >= 10);
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, '');
    fs.writeSync(fd, numberedLines(11, 15)); // the writer has not reopened yet
    fs.appendFileSync(file, numberedLines(16, 20));
    await waitFor(() => first.lines.length >= 20);
    await first.follower.close();
    // Saved: the new file at the path, and the rotated one by inode in its own slot.
    const rotatedIno = fs.statSync(`${file}.1`).ino;
    expect((await positions.store.getPosition(rotatedPositionId('j:auth', 0)))?.inode).toBe(rotatedIno);
    expect((await positions.store.getPosition('j:auth'))?.inode).toBe(fs.statSync(file).ino);

    // While stopped the old writer still adds lines to the rotated file, the new one to the path.
    fs.writeSync(fd, numberedLines(21, 25));
    fs.closeSync(fd);
    fs.appendFileSync(file, numberedLines(26, 30));
    const second = restartable(file, positions, 200);
    await second.follower.start();
    await waitFor(() => second.lines.length >= 10);
    expect(numbersIn(second.lines)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(exactlyOnce(numbersIn([...first.lines, ...second.lines]), 30)).toBeUndefined();
    expect(logged.some((entry) => entry.message.includes(`reading ${file}.1 on from byte`))).toBe(true);
    // Read to its end and quiet for the grace period: forgotten.
    await waitFor(() => !second.follower.committedRotated.length);
    await second.follower.close();
    expect((await positions.store.getPosition(rotatedPositionId('j:auth', 0)))?.inode).toBe(0);

    fs.appendFileSync(file, numberedLines(31, 32));
    const third = restartable(file, positions);
    await third.follower.start();
    await waitFor(() => third.lines.length >= 2);
    expect(numbersIn(third.lines)).toEqual([31, 32]);
  });

  it('a file rotated while stopped, with lines added before the rotation: they are read, then the new file', async () => {
    const file = path.join(dir, 'auth.log');
    const positions = { store: store(), id: 'p' };
    fs.writeFileSync(file, numberedLines(1, 5));
    const first = restartable(file, positions);
    await first.follower.start();
    await waitFor(() => first.lines.length >= 5);
    await first.follower.close();
    fs.appendFileSync(file, numberedLines(6, 9));
    fs.renameSync(file, `${file}-20261201`); // logrotate's dateext
    fs.writeFileSync(file, numberedLines(10, 12));
    const second = restartable(file, positions, 200);
    await second.follower.start();
    await waitFor(() => second.lines.length >= 7);
    // The rotated file's rest comes first: it is older.
    expect(numbersIn(second.lines)).toEqual([6, 7, 8, 9, 10, 11, 12]);
  });

  it('rotated again while stopped (.1 → .2, the path → .1): both are read on from where they stopped', async () => {
    const file = path.join(dir, 'auth.log');
    const positions = { store: store(), id: 'p' };
    fs.writeFileSync(file, numberedLines(1, 5));
    const first = restartable(file, positions);
    await first.follower.start();
    await waitFor(() => first.lines.length >= 5);
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, numberedLines(6, 8));
    await waitFor(() => first.lines.length >= 8);
    await first.follower.close();
    // While stopped: the old writer adds to .1, the new file gets lines, then a second rotation.
    fs.appendFileSync(`${file}.1`, numberedLines(9, 10));
    fs.appendFileSync(file, numberedLines(11, 12));
    fs.renameSync(`${file}.1`, `${file}.2`);
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, numberedLines(13, 14));
    const second = restartable(file, positions, 200);
    await second.follower.start();
    await waitFor(() => second.lines.length >= 6);
    // Settled once a later write has been read: a wrong re-read would come before it.
    fs.appendFileSync(file, numberedLines(15, 15));
    await waitFor(() => numbersIn(second.lines).includes(15));
    expect(numbersIn(second.lines).sort((a, b) => a - b)).toEqual([9, 10, 11, 12, 13, 14, 15]);
    expect(exactlyOnce(numbersIn([...first.lines, ...second.lines]), 15)).toBeUndefined();
  });

  it('a rotated file removed (or compressed) while stopped is reported once and forgotten', async () => {
    const file = path.join(dir, 'auth.log');
    const positions = { store: store(), id: 'p' };
    fs.writeFileSync(file, numberedLines(1, 3));
    const first = restartable(file, positions);
    await first.follower.start();
    await waitFor(() => first.lines.length >= 3);
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, numberedLines(4, 5));
    await waitFor(() => first.lines.length >= 5);
    await first.follower.close();
    // Compressed: the same bytes under a name that is not read (and a new inode, as gzip makes).
    fs.writeFileSync(`${file}.1.gz`, fs.readFileSync(`${file}.1`));
    fs.unlinkSync(`${file}.1`);
    fs.appendFileSync(file, numberedLines(6, 7));
    const gone = () => logged.filter((entry) => entry.level === 'warn' && entry.message.includes('is gone'));

    const second = restartable(file, positions);
    await second.follower.start();
    await waitFor(() => second.lines.length >= 2);
    expect(numbersIn(second.lines)).toEqual([6, 7]);
    expect(gone()).toHaveLength(1);
    expect(gone()[0]?.message).toMatch(
      /^.*auth\.log: the rotated file being read \(inode \d+, read to byte \d+\) is gone or compressed; lines written to it after that were not read$/,
    );
    await second.follower.close();
    expect((await positions.store.getPosition(rotatedPositionId('p', 0)))?.inode).toBe(0);

    const third = restartable(file, positions);
    await third.follower.start();
    await third.follower.close();
    expect(gone()).toHaveLength(1);
  });

  it('a crash between two saves (the rotated slot ahead of a stale path position) reads on from the furthest one', async () => {
    const file = path.join(dir, 'auth.log');
    const positions = { store: store(), id: 'p' };
    fs.writeFileSync(file, numberedLines(1, 6));
    const first = restartable(file, positions);
    await first.follower.start();
    await waitFor(() => first.lines.length >= 6);
    await first.follower.close();
    const atSix = await positions.store.getPosition('p');
    // As a kill between writing the slot and the path's position leaves it: both name the old file.
    await positions.store.setPosition('p', {
      ...(atSix as LogPosition),
      offset: Buffer.byteLength(numberedLines(1, 2)),
    });
    await positions.store.setPosition(rotatedPositionId('p', 0), atSix as LogPosition);
    fs.appendFileSync(file, numberedLines(7, 8));
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, numberedLines(9, 9));
    const second = restartable(file, positions, 200);
    await second.follower.start();
    await waitFor(() => second.lines.length >= 3);
    fs.appendFileSync(file, numberedLines(10, 10));
    await waitFor(() => numbersIn(second.lines).includes(10));
    expect(numbersIn(second.lines)).toEqual([7, 8, 9, 10]);
  });

  it('rotated without a new file (nocreate): the old one is read on, the path read from 0 when it comes, no repeat after another restart', async () => {
    const file = path.join(dir, 'auth.log');
    const positions = { store: store(), id: 'p' };
    fs.writeFileSync(file, numberedLines(1, 3));
    const first = restartable(file, positions);
    await first.follower.start();
    await waitFor(() => first.lines.length >= 3);
    await first.follower.close();
    fs.appendFileSync(file, numberedLines(4, 5));
    fs.renameSync(file, `${file}.1`);
    const second = restartable(file, positions, 100);
    await second.follower.start();
    await waitFor(() => second.lines.length >= 2);
    await waitFor(() => !second.follower.active);
    await second.follower.close();
    const third = restartable(file, positions, 100);
    await third.follower.start();
    fs.writeFileSync(file, numberedLines(6, 7));
    await waitFor(() => third.lines.length >= 2);
    await third.follower.close();
    expect(exactlyOnce(numbersIn([...first.lines, ...second.lines, ...third.lines]), 7)).toBeUndefined();
  });
});
