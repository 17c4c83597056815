import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Control } from '../../../../src/operate/control.js';
import { requestControl } from '../../../../src/surfaces/control/client.js';
import { ControlServer } from '../../../../src/surfaces/control/server.js';

const dir = mkdtempSync(join(tmpdir(), 'pc-ctlsrv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const path = () => join(dir, `s${++n}.sock`);
let servers: ControlServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/** A control double: records calls, answers plainly. */
function fakeControl() {
  const calls: [string, ...unknown[]][] = [];
  const control = {
    ping: () => ({ pong: true as const, pid: 1, version: 't' }),
    status: () => {
      calls.push(['status']);
      return { jails: [] };
    },
    ban: async (target: string, options: object) => {
      calls.push(['ban', target, options]);
      return { target };
    },
    unban: async (target: string, options: object) => {
      calls.push(['unban', target, options]);
      return 1;
    },
    jail: async (name: string) => {
      throw Object.assign(new Error(`no jail named "${name}"`), { code: 'X' });
    },
  } as unknown as Control;
  return { control, calls };
}

async function start(socket = path(), mode?: number) {
  const { control, calls } = fakeControl();
  const server = new ControlServer(control, { socket, ...(mode === undefined ? {} : { mode }) });
  servers.push(server);
  await server.start();
  return { server, calls, socket };
}

function exchange(socket: string, payload: string | Buffer, waitMs = 500): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let text = '';
    const done = () => {
      s.destroy();
      resolve(text.split('\n').filter(Boolean));
    };
    const timer = setTimeout(done, waitMs);
    s.on('data', (c) => {
      text += c.toString();
    });
    s.on('end', () => {
      clearTimeout(timer);
      done();
    });
    s.on('error', reject);
    s.write(payload);
  });
}

describe('ControlServer', () => {
  it('listens with mode 0600 (or the one configured) and removes the socket at close', async () => {
    const { server, socket } = await start();
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    await server.close();
    expect(existsSync(socket)).toBe(false);
    const group = await start(path(), 0o660);
    expect(statSync(group.socket).mode & 0o777).toBe(0o660);
  });

  it('creates the missing directory of the socket', async () => {
    const socket = join(dir, 'run', 'sub', 'pc.sock');
    await start(socket);
    expect(statSync(socket).isSocket()).toBe(true);
  });

  it('dispatches validated requests and answers each line in order, with its id', async () => {
    const { socket, calls } = await start();
    const lines = await exchange(
      socket,
      '{"id":1,"op":"ban","args":{"target":"192.0.2.1","jail":"sshd","bantimeMs":60000}}\n{"id":"b","op":"status"}\n',
    );
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { id: 1, ok: true, result: { target: '192.0.2.1' } },
      { id: 'b', ok: true, result: { jails: [] } },
    ]);
    expect(calls).toEqual([['ban', '192.0.2.1', { jail: 'sshd', bantimeMs: 60000 }], ['status']]);
  });

  it('refuses what is not a request, naming the problem, and never calls the control', async () => {
    const { socket, calls } = await start();
    const bad = [
      'not json',
      '[1,2]',
      '{"op":"shutdown-now"}',
      '{"op":"ban","args":{"target":"192.0.2.1","extra":true}}',
      '{"op":"ban","args":{"target":"192.0.2.1","bantimeMs":-5}}',
      '{"op":"unban","args":"192.0.2.1"}',
      '{"id":{},"op":"ping"}',
      '{"op":"__proto__"}',
    ];
    const lines = (await exchange(socket, `${bad.join('\n')}\n`)).map((l) => JSON.parse(l));
    expect(lines).toHaveLength(bad.length);
    for (const line of lines)
      expect(line).toMatchObject({ ok: false, error: { code: 'PC_ERR_CONTROL_REQUEST' } });
    expect(lines.map((l) => l.error.message)).toEqual([
      'not JSON: each request is one JSON object on one line',
      'expected a JSON object { "op": ..., "args": {...} }',
      expect.stringContaining(
        'op: expected one of ping, status, jail, decisions, banned, ban, unban, unbanAll, reload, stop, got "shutdown-now"',
      ),
      expect.stringContaining('ban: args: '),
      expect.stringContaining('ban: args.bantimeMs: '),
      'args: expected an object',
      'id: expected a number or a string',
      expect.stringContaining('op: expected one of'),
    ]);
    expect(calls).toEqual([]);
  });

  it('answers an oversized request with an error and closes that connection only', async () => {
    const { socket } = await start();
    const lines = await exchange(socket, Buffer.alloc(100 * 1024, 0x7b));
    expect(JSON.parse(lines[0] as string).error.message).toBe(
      'request larger than 65536 bytes; connection closed',
    );
    expect(await requestControl(socket, 'ping')).toMatchObject({ pong: true });
  });

  it('passes a failing operation back as an error answer', async () => {
    const { socket } = await start();
    await expect(requestControl(socket, 'jail', { name: 'x' })).rejects.toMatchObject({
      code: 'PC_ERR_INTERNAL',
      message: 'no jail named "x"',
    });
  });

  it('replaces a stale socket file (nothing answers) but never a live one or a non-socket', async () => {
    const staleSocket = await leaveStaleSocket();
    await start(staleSocket);
    expect(await requestControl(staleSocket, 'ping')).toMatchObject({ pong: true });

    const live = new ControlServer(fakeControl().control, { socket: staleSocket });
    await expect(live.start()).rejects.toMatchObject({
      code: 'PC_ERR_CONTROL_SOCKET',
      message: `another portcullis daemon answers on ${staleSocket}`,
      inUse: true,
    });
    await live.close();
    expect(await requestControl(staleSocket, 'ping')).toMatchObject({ pong: true });

    const file = join(dir, 'plain-file');
    writeFileSync(file, 'keep me');
    const onFile = new ControlServer(fakeControl().control, { socket: file });
    await expect(onFile.start()).rejects.toMatchObject({
      message: `${file} exists and is not a socket; remove it or set control.socket`,
    });
    expect(existsSync(file)).toBe(true);
  });

  it('the client says no daemon runs when the file is missing or stale', async () => {
    await expect(requestControl(join(dir, 'none.sock'), 'ping')).rejects.toMatchObject({
      code: 'PC_ERR_NO_DAEMON',
      message: `no portcullis daemon at ${join(dir, 'none.sock')}: is \`portcullis run\` running?`,
    });
    const stale = await leaveStaleSocket();
    await expect(requestControl(stale, 'ping')).rejects.toMatchObject({ code: 'PC_ERR_NO_DAEMON' });
  });
});

/** A socket file nothing listens on: a child process binds it and is killed with SIGKILL. */
async function leaveStaleSocket(): Promise<string> {
  const socket = path();
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [
    '-e',
    `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => process.stdout.write('up'))`,
  ]);
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  expect(statSync(socket).isSocket()).toBe(true);
  return socket;
}
