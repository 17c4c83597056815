import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { send } from '../helpers/http-client.js';
import { makeTempDir } from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait-for.js';

// `portcullis run` follows a plain path; logrotate renames it while the old writer keeps writing
// to the renamed file; portcullis is killed with SIGKILL after its last position save, and more
// lines reach both files while it is down. The restart must read each of them exactly once.

let dir: string;
let running: ReturnType<typeof startCli> | undefined;
let token: string;

beforeEach(() => {
  dir = makeTempDir('portcullis-rotate-run-');
  token = randomBytes(20).toString('hex');
  fs.writeFileSync(path.join(dir, 'admin.token'), `${token}\n`, { mode: 0o600 });
  fs.writeFileSync(
    path.join(dir, 'portcullis.yaml'),
    [
      'store: { sqlite: ./state.db }',
      'defaults: { ignoreip: [], ignoreself: false }',
      'admin: { listen: "127.0.0.1:0", token_file: admin.token }',
      'jails:',
      '  auth:',
      '    source: { log: ./auth.log, start: beginning }',
      `    filter: { failregex: ['^FAIL from <HOST> n=\\d+$'] }`,
      `    datepattern: '{NONE}'`,
      '    maxretry: 1',
      '    findtime: 1d',
      '    bantime: 1d',
      '',
    ].join('\n'),
  );
});
afterEach(async () => {
  if (running !== undefined && running.child.exitCode === null && running.child.signalCode === null) {
    running.child.kill('SIGKILL');
    await running.exited;
  }
  running = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Line n comes from its own address, so each line read once is one ban of one address. */
const ipOf = (n: number) => `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`;
const lines = (from: number, to: number) => {
  let out = '';
  for (let n = from; n <= to; n++) out += `FAIL from ${ipOf(n)} n=${n}\n`;
  return out;
};

async function start(): Promise<{ linesRead: () => Promise<number> }> {
  const cli = startCli(['run', '-c', path.join(dir, 'portcullis.yaml')], { PORTCULLIS_LOG_LEVEL: 'info' });
  running = cli;
  await cli.waitFor(/admin listening on http:\/\/127\.0\.0\.1:\d+/, 30_000);
  const port = Number(/admin listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(cli.output())?.[1]);
  return {
    async linesRead() {
      const reply = await send(port, { path: '/metrics', headers: { authorization: `Bearer ${token}` } });
      const match = /^portcullis_log_lines_read_total\{jail="auth"\} (\d+)$/m.exec(reply.body);
      return Number(match?.[1] ?? 0);
    },
  };
}

/** The saved positions, as the restart will find them. */
function savedPositions(): Map<string, { offset: number; inode: number }> {
  const db = new Database(path.join(dir, 'state.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT id, "offset", inode FROM log_positions').all() as {
      id: string;
      offset: number;
      inode: number;
    }[];
    return new Map(rows.map((row) => [row.id, { offset: row.offset, inode: row.inode }]));
  } catch {
    return new Map(); // not created yet
  } finally {
    db.close();
  }
}

function bannedAddresses(): Set<string> {
  const db = new Database(path.join(dir, 'state.db'), { readonly: true });
  try {
    return new Set(db.prepare('SELECT target FROM bans').pluck().all() as string[]);
  } finally {
    db.close();
  }
}

it('SIGKILL while a rotated file is being read: the restart reads the rest of it and of the new file, each line once', async () => {
  const log = path.join(dir, 'auth.log');
  const id = `auth:${log}`;
  fs.writeFileSync(log, '');
  const first = await start();
  const writer = fs.openSync(log, 'a'); // the daemon writing the log
  fs.writeSync(writer, lines(1, 100));
  await waitFor(async () => (await first.linesRead()) === 100, { timeoutMs: 20_000, message: 'lines 1-100' });

  // logrotate: rename + create; the daemon has not reopened its log yet.
  fs.renameSync(log, `${log}.1`);
  fs.writeFileSync(log, '');
  fs.writeSync(writer, lines(101, 110));
  fs.appendFileSync(log, lines(111, 150));
  const rotated = fs.statSync(`${log}.1`);
  const current = fs.statSync(log);
  // Killed after the last save: the rotated file (read to its end) and the new one both saved.
  await waitFor(
    () => {
      const saved = savedPositions();
      const slot = saved.get(`${id}#rotated.0`);
      const main = saved.get(id);
      return (
        slot?.inode === rotated.ino &&
        slot.offset === rotated.size &&
        main?.inode === current.ino &&
        main.offset === current.size
      );
    },
    { timeoutMs: 10_000, message: () => `positions saved: ${JSON.stringify([...savedPositions()])}` },
  );
  expect(await first.linesRead()).toBe(150);
  running?.child.kill('SIGKILL');
  await running?.exited;
  expect(running?.child.signalCode).toBe('SIGKILL');

  // While portcullis is down: the daemon still writes to the rotated file, then reopens.
  fs.writeSync(writer, lines(151, 160));
  fs.closeSync(writer);
  fs.appendFileSync(log, lines(161, 200));
  const second = await start();
  await waitFor(async () => (await second.linesRead()) >= 50, {
    timeoutMs: 20_000,
    message: 'lines 151-200',
  });
  // Settled once a later line is read (the rotated file is read first): a repeat would come before it.
  fs.appendFileSync(log, lines(201, 201));
  await waitFor(async () => (await second.linesRead()) >= 51, { timeoutMs: 20_000, message: 'line 201' });
  expect(await second.linesRead()).toBe(51);
  expect(running?.output()).toContain(`reading ${log}.1 on from byte ${rotated.size}`);
  running?.child.kill('SIGTERM');
  expect(await running?.exited).toBe(0);

  // 51 lines read after the restart and every one of lines 1-201 banned: 151-201 exactly once.
  const banned = bannedAddresses();
  const missing = Array.from({ length: 201 }, (_, i) => i + 1).filter((n) => !banned.has(ipOf(n)));
  expect(missing).toEqual([]);
  expect(banned.size).toBe(201);
});
