// npm run bench:proxy — the reverse proxy side by side with the upstream alone, bare http-proxy-3,
// http-proxy 1.18.1 and nginx, in one run:
//  1. throughput: wrk (1 thread, 50 connections, keep-alive), median of ROUNDS runs per variant,
//     variants alternating;
//  2. cost: at a fixed rate (autocannon -R), CPU time of the proxy process per request, read from
//     /proc/<pid>/stat (utime + stime) before and after;
//  3. refusing: a banned client hammering a `deny: drop` listener: connections reset per second.
// The upstream is nginx answering "Hello World!" itself (the cheapest upstream there is, so the
// proxies get the CPU). portcullis runs with seven http jails (web-auth, scanners, bad-bots and the four payload rules) and 100k bans (an in-memory SQLite
// store, as bench:express). Needs wrk and nginx (apt-get install wrk nginx).
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Agent as HttpAgent, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { ProxyServer } from 'http-proxy-3';
import { formatIPv4 } from '../src/core/ip.js';
import { createGuard } from '../src/index.js';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.js';
import { createProxy } from '../src/surfaces/proxy/index.js';
import { fmt, machineLine, median } from './machine.js';

const NODE_VARIANTS = ['http-proxy-3', 'http-proxy', 'portcullis', 'portcullis+log'] as const;
const VARIANTS = ['direct', ...NODE_VARIANTS, 'nginx'] as const;
type Variant = (typeof VARIANTS)[number];
type NodeVariant = (typeof NODE_VARIANTS)[number];
const BANS = 100_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION_S = Number(process.env.DURATION ?? 5);
const CONNECTIONS = 50;
const FIXED_RATE = Number(process.env.RATE ?? 2_000);
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

if (process.argv[2] === '--serve')
  await serve(process.argv[3] as NodeVariant | 'drop', Number(process.argv[4]));
else await main();

/** A proxy variant in this (child) process, forwarding to 127.0.0.1:`upstreamPort`. */
async function serve(variant: NodeVariant | 'drop', upstreamPort: number): Promise<void> {
  const target = `http://127.0.0.1:${upstreamPort}`;
  let report: () => unknown = () => ({});
  let port: number;
  if (variant === 'http-proxy-3' || variant === 'http-proxy') {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
    let server: Server;
    if (variant === 'http-proxy-3') {
      const proxy = new ProxyServer({ target, agent, xfwd: true });
      proxy.on('error', () => {});
      server = createServer((req, res) => proxy.web(req, res));
    } else {
      const httpProxy = (await import('http-proxy')).default;
      const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true });
      proxy.on('error', () => {});
      server = createServer((req, res) => proxy.web(req, res));
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as AddressInfo).port;
  } else {
    const store = new SqliteStore({ path: ':memory:' });
    const guard = await createGuard(
      {
        defaults: { ignoreip: [], ignoreself: false },
        jails: {
          'web-auth': { source: 'http', filter: { status: [401, 403], path: '^/(login|api/session)' } },
          scanners: { source: 'http', filter: 'scanners' },
          'bad-bots': { source: 'http', filter: 'bad-bots' },
          sqli: { source: 'http', filter: 'sqli' },
          xss: { source: 'http', filter: 'xss' },
          lfi: { source: 'http', filter: 'lfi' },
          'cmd-injection': { source: 'http', filter: 'cmd-injection' },
        },
      },
      { store, env: {} },
    );
    let seed = 0x9e3779b9;
    for (let i = 0; i < BANS; i++) {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      // Never 127/8: the benchmark's own client must stay allowed.
      await guard.ban(formatIPv4(seed >>> 24 === 127 ? (seed ^ 0x01000000) >>> 0 : seed), { duration: '1h' });
    }
    if (variant === 'drop') await guard.ban('127.0.0.1', { duration: '1h' });
    if (guard.stats.activeBans < BANS * 0.99) throw new Error(`only ${guard.stats.activeBans} bans loaded`);
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const proxy = await createProxy(guard, {
      listen: '127.0.0.1:0',
      target,
      deny: variant === 'drop' ? 'drop' : 403,
      accessLog: variant === 'portcullis+log' ? { path: join(dir, 'access.log') } : null,
    });
    port = proxy.addresses[0]?.port as number;
    report = () => ({ ...proxy.stats });
  }
  console.log(JSON.stringify({ port }));
  process.on('message', () => process.send?.(report()));
  // An orderly exit, so that `node --cpu-prof` can write its profile.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
}

interface Running {
  variant: Variant | 'drop';
  port: number;
  /** The process whose CPU time is the proxy's (nginx: its worker). */
  pid: number;
  stop(): Promise<void>;
  child?: ChildProcess;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startNode(variant: NodeVariant | 'drop', upstreamPort: number): Promise<Running> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', script, '--serve', variant, String(upstreamPort)],
    {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    },
  );
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  for await (const line of lines) {
    if (!line.startsWith('{')) continue;
    const { port } = JSON.parse(line) as { port: number };
    return { variant, port, pid: child.pid as number, child, stop: () => stopChild(child) };
  }
  throw new Error(`${variant}: exited before listening`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** An nginx of our own (master + 1 worker, `daemon off`), from a config written to a temp dir. */
async function startNginx(name: string, serverBlock: string, port: number, upstreams = ''): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), `portcullis-bench-nginx-${name}-`));
  mkdirSync(join(dir, 'tmp'));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  keepalive_requests 1000000;
  ${upstreams}
  server {
    listen 127.0.0.1:${port};
    ${serverBlock}
  }
}
`,
  );
  const child = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 5_000;
  let worker = 0;
  while (worker === 0) {
    if (Date.now() > deadline)
      throw new Error(`nginx ${name} did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    try {
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      worker = Number(children.split(' ')[0] ?? 0);
    } catch {
      // not yet
    }
  }
  return {
    variant: 'nginx',
    port,
    pid: worker,
    child,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** utime + stime of a process, µs. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

interface WrkResult {
  rps: number;
  non2xx: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

function wrk(port: number, seconds: number, connections = CONNECTIONS): WrkResult {
  const out = execFileSync(
    'wrk',
    ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const latency = (label: string) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (m === null) return 0;
    const value = Number(m[1]);
    return m[2] === 'us' ? value / 1000 : m[2] === 's' ? value * 1000 : value;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    errors: socket === null ? 0 : socket.slice(1, 5).reduce((n, v) => n + Number(v), 0),
    p50Ms: latency('50'),
    p99Ms: latency('99'),
  };
}

async function cpuPerRequest(running: Running): Promise<number> {
  const before = cpuMicros(running.pid);
  // `overallRate` (autocannon -R) is not in bench/autocannon.d.ts; a variable skips the literal check.
  const options = {
    url: `http://127.0.0.1:${running.port}/`,
    connections: 20,
    duration: DURATION_S,
    overallRate: FIXED_RATE,
  };
  const result = await autocannon(options);
  const after = cpuMicros(running.pid);
  return (after - before) / Math.max(1, result.requests.total);
}

function stats(child: ChildProcess): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve(message as Record<string, number>));
    child.send('stats');
  });
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(`nproc: ${availableParallelism()}, node ${process.version}`);
  // Both print their version on an error path (wrk -v exits 1, nginx -v writes to stderr).
  const version = (cmd: string, args: string[]) => {
    const run = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${run.stdout ?? ''}${run.stderr ?? ''}`.trim().split('\n')[0] ?? `${cmd}: not found`;
  };
  console.log(`${version('wrk', ['-v'])}; ${version('nginx', ['-v'])}`);
  console.log(
    `wrk: 1 thread, ${CONNECTIONS} connections, ${DURATION_S}s per run, ${ROUNDS} runs per variant (alternating); ` +
      `CPU at ${fmt(FIXED_RATE)} req/s (autocannon -R); portcullis: 7 http jails (3 + the payload rules), ${fmt(BANS)} bans; ` +
      'portcullis+log: the same with a combined access log',
  );

  const running: Running[] = [];
  try {
    const upstreamPort = await freePort();
    const upstream = await startNginx(
      'upstream',
      'location / { default_type text/plain; return 200 "Hello World!"; }',
      upstreamPort,
    );
    running.push(upstream);
    const servers = new Map<Variant, Running>();
    servers.set('direct', { ...upstream, variant: 'direct' });
    for (const variant of NODE_VARIANTS) {
      const server = await startNode(variant, upstreamPort);
      running.push(server);
      servers.set(variant, server);
    }
    const nginxPort = await freePort();
    const nginx = await startNginx(
      'proxy',
      `location / {
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }`,
      nginxPort,
      `upstream app { server 127.0.0.1:${upstreamPort}; keepalive 256; }`,
    );
    running.push(nginx);
    servers.set('nginx', nginx);

    for (const variant of VARIANTS) wrk((servers.get(variant) as Running).port, 1); // warm up
    const results = new Map<Variant, WrkResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const r = wrk((servers.get(variant) as Running).port, DURATION_S);
        results.set(variant, [...(results.get(variant) ?? []), r]);
        console.log(`  round ${round + 1} ${variant.padEnd(15)} ${fmt(r.rps)} req/s`);
      }
    }
    const cpu = new Map<Variant, number>();
    for (const variant of VARIANTS) {
      const server = servers.get(variant) as Running;
      cpu.set(variant, await cpuPerRequest(server));
      console.log(
        `  CPU ${variant.padEnd(15)} ${fmt(cpu.get(variant) ?? 0, 1)} µs/req at ${fmt(FIXED_RATE)} req/s`,
      );
    }

    const of = (variant: Variant, pick: (r: WrkResult) => number) =>
      median((results.get(variant) ?? []).map(pick));
    const bare = of('http-proxy-3', (r) => r.rps);
    console.log(
      '\nvariant          req/s (median)  vs http-proxy-3  p50 ms  p99 ms  non-2xx+errors  proxy CPU µs/req (fixed rate)',
    );
    for (const variant of VARIANTS) {
      const rps = of(variant, (r) => r.rps);
      const bad = (results.get(variant) ?? []).reduce((n, r) => n + r.non2xx + r.errors, 0);
      console.log(
        [
          variant.padEnd(15),
          fmt(rps).padStart(15),
          `${fmt(rps / bare, 2)}×`.padStart(15),
          fmt(
            of(variant, (r) => r.p50Ms),
            2,
          ).padStart(6),
          fmt(
            of(variant, (r) => r.p99Ms),
            2,
          ).padStart(6),
          String(bad).padStart(14),
          `${fmt(cpu.get(variant) ?? 0, 1)}${variant === 'direct' ? ' (the upstream itself)' : ''}`.padStart(
            12,
          ),
        ].join('  '),
      );
    }

    // A banned client (127.0.0.1) hammering a deny: drop listener: every connection is reset at accept.
    const drop = await startNode('drop', upstreamPort);
    running.push(drop);
    const child = drop.child as ChildProcess;
    const before = await stats(child);
    const cpuBefore = cpuMicros(drop.pid);
    const started = performance.now();
    const hammer = wrk(drop.port, DURATION_S, 200);
    const seconds = (performance.now() - started) / 1000;
    const after = await stats(child);
    const dropped = (after.dropped ?? 0) - (before.dropped ?? 0);
    const cpuPerDrop = (cpuMicros(drop.pid) - cpuBefore) / Math.max(1, dropped);
    console.log(
      `\ndeny: drop, banned client (wrk, 200 connections): ${fmt(dropped / seconds)} connections refused/s ` +
        `(proxy count; wrk saw ${fmt(hammer.errors)} socket errors, ${fmt(hammer.rps)} responses/s), ` +
        `${fmt(cpuPerDrop, 1)} µs proxy CPU per refusal; requests that reached a handler: ${(after.requests ?? 0) - (before.requests ?? 0)}`,
    );
    const portcullis = of('portcullis', (r) => r.rps);
    console.log(
      `\ngoals: portcullis ≥ 0.9× bare http-proxy-3 throughput: ${fmt(portcullis / bare, 2)}× ` +
        `(${portcullis / bare >= 0.9 ? 'met' : 'NOT met'}); banned connections refused ≥ 20k/s: ` +
        `${fmt(dropped / seconds)}/s (${dropped / seconds >= 20_000 ? 'met' : 'NOT met'})`,
    );
  } finally {
    for (const server of running.reverse()) await server.stop();
  }
}
