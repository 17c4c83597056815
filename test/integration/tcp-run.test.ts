import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { TcpGuard } from '../../src/sources/socket/tcp-guard.js';
import { type RunningInstance, runFromFile } from '../../src/surfaces/cli/run.js';
import { A, B, echo, exchange, hold, runCleanups, startUpstream } from '../helpers/tcp.js';
import { waitFor } from '../helpers/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-tcp-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(runCleanups);

function write(file: string, lines: string[]): void {
  writeFileSync(
    file,
    [
      'log: { level: silent }',
      'control: false',
      'store: { memory: true }',
      'defaults: { ignoreip: [], ignoreself: false }',
      ...lines,
      '',
    ].join('\n'),
  );
}

const tcpSource = (instance: RunningInstance, name: string) =>
  instance.sources.sources.find((source) => source.name === `tcp:${name}`) as TcpGuard | undefined;

describe('portcullis run: tcp: listeners', () => {
  it('starts them, keeps an unchanged one across a reload (its connections too), restarts a changed one, adds a new one', async () => {
    const upstream = await startUpstream();
    const file = join(dir, 'tcp.yaml');
    const svc = `  svc: { listen: "127.0.0.1:0", target: "127.0.0.1:${upstream.port}" }`;
    write(file, ['tcp:', svc]);
    let instance: RunningInstance | undefined;
    try {
      instance = await runFromFile(file);
      const first = tcpSource(instance, 'svc');
      expect(first).toBeDefined();
      const port = first?.address?.port as number;
      expect((await echo(port, 'one')).data.toString()).toBe('one');
      const live = await hold(port, B);

      // Same listener, one more jail: kept in place, the live connection survives, the jail applies.
      write(file, [
        'tcp:',
        svc,
        'jails:',
        '  flood: { source: { socket: svc }, filter: conn-flood, maxretry: 2 }',
      ]);
      await instance.reload();
      expect(tcpSource(instance, 'svc')).toBe(first);
      await echo(port, 'a');
      expect((await echo(port, 'b')).data.length).toBe(0); // the 2nd open bans
      expect(instance.guard.isBanned(A)).toBe(true);
      live.write('still open');
      const back = await new Promise<string>((resolve) =>
        live.once('data', (chunk) => resolve(chunk.toString())),
      );
      expect(back).toBe('still open');

      // A second listener added: started, the first still kept.
      const two = `  two: { listen: "127.0.0.1:0", target: "127.0.0.1:${upstream.port}" }`;
      write(file, ['tcp:', svc, two]);
      await instance.reload();
      expect(tcpSource(instance, 'svc')).toBe(first);
      const second = tcpSource(instance, 'two');
      expect(second).toBeDefined();
      expect((await echo(second?.address?.port as number, 'two', B)).data.toString()).toBe('two');

      // The first listener changed: closed (its connections with it) and started anew.
      write(file, ['tcp:', svc.replace(' }', ', idle_timeout: 1m }'), two]);
      await instance.reload();
      const restarted = tcpSource(instance, 'svc');
      expect(restarted).not.toBe(first);
      expect(await live.ended).toBeDefined();
      const port2 = restarted?.address?.port as number;
      expect((await echo(port2, 'again', B)).data.toString()).toBe('again');
      expect(instance.sources.stats()['tcp:svc']).toMatchObject({ accepted: 1, active: 0 });
    } finally {
      await instance?.stop();
    }
  });

  it('stop() closes listeners and live connections; nothing is left open', async () => {
    const upstream = await startUpstream();
    const file = join(dir, 'stop.yaml');
    write(file, ['tcp:', `  svc: { listen: "127.0.0.1:0", target: "127.0.0.1:${upstream.port}" }`]);
    const instance = await runFromFile(file);
    const port = tcpSource(instance, 'svc')?.address?.port as number;
    const sockets = [await hold(port, A), await hold(port, B)];
    await waitFor(() => upstream.seen.length === 2, { message: 'two upstream connections' });
    await instance.stop();
    expect(await Promise.all(sockets.map((socket) => socket.ended))).toHaveLength(2);
    const after = await exchange(port, () => {}, { timeoutMs: 2_000 }).catch(() => undefined);
    expect(after?.data.length ?? 0).toBe(0);
  });
});
