// npm run bench:rate — what sharing a rate jail over Redis costs the proxy, side by side in one run:
//  1. under the rate: throughput of a proxy with one rate jail (a rate no client reaches) on a
//     memory store (counted here only) and on a Redis store (each request also adds one to the
//     shared count, not waited for), median of ROUNDS alternating runs;
//  2. over the rate: one client flooding past `100/10s` through the Redis-backed proxy: requests
//     refused per second and the Redis script calls they cost (expected: none).
// The proxy runs in a child process (autocannon would otherwise share its CPU); the upstream is a
// bare node:http server in a third process. Needs redis-server.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { createGuard } from '../src/index.js';
import { createProxy } from '../src/surfaces/proxy/index.js';
import { startRedis, uniquePrefix } from '../test/helpers/redis-server.js';
import { fmt, machineLine, median } from './machine.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION_S = Number(process.env.DURATION ?? 5);
const CONNECTIONS = 20;
type Variant = 'memory' | 'redis';

if (process.argv[2] === '--serve') await serve(process.argv[3] as Variant, process.argv[4] as string);
else if (process.argv[2] === '--upstream') await upstream();
else await main();

async function upstream(): Promise<void> {
  const server = createServer((_req, res) => res.end('Hello World!'));
  server.listen(0, '127.0.0.1', () => console.log(`PORT ${(server.address() as AddressInfo).port}`));
}

/** One proxy in this child: `redisUrl` empty for the memory store. Prints its port. */
async function serve(variant: Variant, spec: string): Promise<void> {
  const { target, redisUrl, prefix, rate } = JSON.parse(spec) as Record<string, string>;
  const guard = await createGuard(
    {
      store: variant === 'redis' ? { redis: { url: redisUrl as string, prefix } } : { memory: true },
      defaults: { ignoreip: [], ignoreself: false },
      jails: { flood: { source: 'http', rate, maxretry: 1_000_000, bantime: '1h' } },
    },
    { env: {}, outboxPath: null },
  );
  const proxy = await createProxy(guard, { listen: '127.0.0.1:0', target: target as string });
  console.log(`PORT ${proxy.addresses[0]?.port}`);
  process.once('SIGTERM', () => {
    void proxy
      .close()
      .then(() => guard.close())
      .then(() => process.exit(0));
  });
}

function child(args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const script = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const match = /^PORT (\d+)$/.exec(line);
      if (match !== null) resolve({ proc, port: Number(match[1]) });
    });
    proc.once('exit', (code) => reject(new Error(`child ${args[0]} exited with ${code}`)));
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}

async function load(port: number, seconds = DURATION_S) {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/`,
    connections: CONNECTIONS,
    duration: seconds,
  });
  return { rps: result.requests.average, p99: result.latency.p99, non2xx: result.non2xx };
}

async function evalCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

async function main(): Promise<void> {
  console.log(machineLine());
  const redis = await startRedis();
  const admin = new Redis(redis.url);
  const app = await child(['--upstream']);
  const target = `http://127.0.0.1:${app.port}`;
  try {
    const results: Record<Variant, { rps: number; p99: number }[]> = { memory: [], redis: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of ['memory', 'redis'] as const) {
        const prefix = uniquePrefix('bench');
        const spec = JSON.stringify({ target, redisUrl: redis.url, prefix, rate: '100000000/10s' });
        const proxy = await child(['--serve', variant, spec]);
        await load(proxy.port, 1); // warm-up
        results[variant].push(await load(proxy.port));
        await stop(proxy.proc);
      }
    }
    const memory = median(results.memory.map((r) => r.rps));
    const shared = median(results.redis.map((r) => r.rps));
    console.log(`under the rate, ${CONNECTIONS} connections, median of ${ROUNDS} × ${DURATION_S}s:`);
    console.log(
      `  memory store (per instance) ${fmt(memory)} req/s, p99 ${median(results.memory.map((r) => r.p99))} ms`,
    );
    console.log(
      `  redis store (shared)        ${fmt(shared)} req/s, p99 ${median(results.redis.map((r) => r.p99))} ms`,
    );
    console.log(`  ratio redis/memory          ${fmt(shared / memory, 2)}`);

    const prefix = uniquePrefix('bench');
    const proxy = await child([
      '--serve',
      'redis',
      JSON.stringify({ target, redisUrl: redis.url, prefix, rate: '100/10s' }),
    ]);
    await load(proxy.port, 1); // puts the client over the rate
    const before = await evalCalls(admin);
    const flood = await load(proxy.port);
    const calls = (await evalCalls(admin)) - before;
    await stop(proxy.proc);
    console.log(
      `over the rate (redis store): ${fmt(flood.rps)} req/s refused (429: ${fmt(flood.non2xx)}), ${calls} Redis script calls for them`,
    );
  } finally {
    await stop(app.proc);
    admin.disconnect();
    await redis.stop();
  }
}
