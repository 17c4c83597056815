// npm run bench:proxy — the reverse proxy side by side with the upstream alone, bare http-proxy-3,
// http-proxy 1.18.1 and nginx, in one run:
//  1. throughput: wrk (1 thread, 50 connections, keep-alive), median of ROUNDS runs per variant,
//     variants alternating, for each request mix (MIX=tiny,browser,lookalike; see MIXES);
//  2. cost: at a fixed rate (autocannon -R), CPU time of the proxy process per request, read from
//     /proc/<pid>/stat (utime + stime) before and after;
//  3. refusing: a banned client hammering a `deny: drop` listener: connections reset per second.
// The upstream is nginx answering "Hello World!" itself (the cheapest upstream there is, so the
// proxies get the CPU). portcullis runs with seven http jails (web-auth, scanners, bad-bots and the four payload rules) and 100k bans (an in-memory SQLite
// store, as bench:express). Needs wrk and nginx (apt-get install wrk nginx).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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

const NODE_VARIANTS = [
  'http-proxy-3',
  'http-proxy',
  'portcullis',
  'portcullis+log',
  'portcullis+admin',
] as const;
const VARIANTS = ['direct', ...NODE_VARIANTS, 'nginx'] as const;
type Variant = (typeof VARIANTS)[number];
type NodeVariant = (typeof NODE_VARIANTS)[number];
const BANS = 100_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION_S = Number(process.env.DURATION ?? 5);
const CONNECTIONS = 50;
const FIXED_RATE = Number(process.env.RATE ?? 2_000);
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s
/** `ONLY=portcullis,portcullis+admin`: just these (with direct and http-proxy-3, the baseline). */
const ONLY = process.env.ONLY?.split(',');
const CHOSEN = VARIANTS.filter(
  (v) => ONLY === undefined || ONLY.includes(v) || v === 'direct' || v === 'http-proxy-3',
);
/** portcullis+admin: /metrics is scraped this often during the run (Prometheus scrapes every 15 s). */
const SCRAPE_MS = 1_000;

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
    if (variant === 'portcullis+admin') await startBenchAdmin(guard, proxy);
  }
  console.log(JSON.stringify({ port }));
  process.on('message', () => process.send?.(report()));
  // An orderly exit, so that `node --cpu-prof` can write its profile.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
}

/** The admin listener with metrics (process metrics included), scraped every SCRAPE_MS. */
async function startBenchAdmin(
  guard: Awaited<ReturnType<typeof createGuard>>,
  proxy: Awaited<ReturnType<typeof createProxy>>,
): Promise<void> {
  const { resolveConfig } = await import('../src/config/load.js');
  const { createControl } = await import('../src/operate/create-control.js');
  const { startAdmin } = await import('../src/surfaces/admin/index.js');
  const token = 'bench-token-0123456789abcdef';
  const config = resolveConfig(
    { store: { memory: true }, admin: { listen: '127.0.0.1:0', token_env: 'T' } },
    { env: { T: token } },
  ).admin;
  if (config === undefined) throw new Error('no admin config');
  const control = createControl({
    guard,
    sourceStats: () => ({ proxy: { ...proxy.stats } }),
    actionStats: () => ({}),
    reload: async () => ({ ok: true }),
    stop: async () => {},
  });
  const admin = await startAdmin({ control, config: () => config, guard, proxy });
  setInterval(() => {
    void fetch(`${admin.url}/metrics`, { headers: { authorization: `Bearer ${token}` } }).then((r) =>
      r.text(),
    );
  }, SCRAPE_MS).unref();
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

/**
 * The request mixes, each a wrk Lua script cycling through its requests (none suits the literal
 * prefilter more than real traffic would):
 * - `tiny`: `GET /` with wrk's two headers, the cheapest request there is;
 * - `browser`: pages, assets and API calls with queries, as browsers send them: user agents,
 *   Accept*, cookies, referers (some 600 bytes of headers);
 * - `lookalike`: the benign corpus values that look like attacks (quotes in searches, `<` in
 *   text, `../` in names...): every payload rule's prefilter lets them through to RE2, none bans.
 */
const MIXES = (process.env.MIX ?? 'tiny,browser,lookalike').split(',') as Mix[];
type Mix = 'tiny' | 'browser' | 'lookalike';

interface MixRequest {
  path: string;
  headers: Record<string, string>;
}

const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
];
const PATHS = [
  '/',
  '/products/list?category=shoes&page=2&sort=price',
  '/products/8812-trail-runner-gtx?color=blue&size=42',
  '/static/js/app.3f9a1c2e.js',
  '/static/css/main.8b21d0.css',
  '/images/products/8812/hero@2x.webp',
  '/api/v1/cart/items?fields=id,name,price,qty&expand=true',
  '/api/v1/search?q=waterproof+running+shoes&lang=en-GB&limit=24&offset=48',
  '/account/orders/2024-11-28/INV-000123',
  '/blog/2024/11/how-to-choose-trail-shoes/',
  '/fonts/inter-var.woff2',
  '/favicon.ico',
];

function mixRequests(mix: Mix): MixRequest[] {
  if (mix === 'tiny') return [{ path: '/', headers: {} }];
  const browser = (path: string, i: number): MixRequest => ({
    path,
    headers: {
      'User-Agent': AGENTS[i % AGENTS.length] as string,
      Accept: path.startsWith('/api/') ? 'application/json' : 'text/html,application/xhtml+xml,*/*;q=0.8',
      'Accept-Language': 'en-GB,en;q=0.9,de;q=0.7',
      'Accept-Encoding': 'gzip, deflate, br',
      Cookie: `session=${(0x9e3779b9 * (i + 1)).toString(16)}a1b2c3d4e5f6; theme=dark; _ga=GA1.2.${1_700_000_000 + i}.1700000000`,
      Referer: 'https://shop.example.com/products/list?category=shoes',
    },
  });
  if (mix === 'browser') return PATHS.map(browser);
  // lookalike: each benign look-alike value where it belongs, in an otherwise browser request.
  const corpus = readFileSync(
    new URL('../test/fixtures/http-corpus/payloads/benign.txt', import.meta.url),
    'utf8',
  );
  const requests: MixRequest[] = [];
  for (const line of corpus.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const space = line.indexOf(' ');
    const where = line.slice(0, space);
    const value = line.slice(space + 1);
    const base = browser(PATHS[requests.length % PATHS.length] as string, requests.length);
    if (where === 'url') base.path = value;
    else if (where === 'user_agent') base.headers['User-Agent'] = value;
    else if (where === 'referer') base.headers.Referer = value;
    else if (where === 'cookie') base.headers.Cookie = value;
    requests.push(base);
  }
  return requests;
}

/**
 * A wrk script cycling through `requests` (Lua long strings: no escaping of the values). A key is
 * `[ [==[Name]==] ]`, blanks included: `[[==[` would open a level-0 long string, and the script
 * failed to load — wrk then printed the error and sent its own `GET /`, so the browser and
 * look-alike mixes measured the tiny one.
 */
function wrkScript(mix: Mix, dir: string): string {
  const quote = (text: string) => {
    if (text.includes(']==]')) throw new Error(`a request value holds "]==]": ${text}`);
    return `[==[${text}]==]`;
  };
  const lines = mixRequests(mix).map((r) => {
    const headers = Object.entries(r.headers).map(([k, v]) => `[ ${quote(k)} ] = ${quote(v)}`);
    return `  wrk.format("GET", ${quote(r.path)}, { ${headers.join(', ')} }),`;
  });
  const path = join(dir, `${mix}.lua`);
  writeFileSync(
    path,
    `local requests\nlocal i = 0\ninit = function()\n  requests = {\n${lines.join('\n')}\n  }\nend\n` +
      'request = function()\n  i = i % #requests + 1\n  return requests[i]\nend\n',
  );
  return path;
}

let scripts: Map<Mix, string> | undefined;

function wrk(port: number, seconds: number, connections = CONNECTIONS, mix: Mix = 'tiny'): WrkResult {
  if (scripts === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-wrk-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    scripts = new Map(MIXES.map((m) => [m, wrkScript(m, dir)]));
  }
  const script = scripts.get(mix) ?? wrkScript(mix, tmpdir());
  const run = spawnSync(
    'wrk',
    ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  // A script wrk cannot load is printed on stderr, and wrk goes on with its own `GET /`.
  if (run.status !== 0 || run.stderr.trim() !== '')
    throw new Error(`wrk failed (${run.status}) on the ${mix} mix: ${run.stderr.trim()}`);
  const out = run.stdout;
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
      'portcullis+log: the same with a combined access log; portcullis+admin: the same with admin: (API, metrics with the latency histogram, process metrics) scraped every second',
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
      if (!CHOSEN.includes(variant)) continue;
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

    for (const variant of CHOSEN) wrk((servers.get(variant) as Running).port, 1); // warm up
    const byMix = new Map<Mix, Map<Variant, WrkResult[]>>();
    for (const mix of MIXES) {
      const results = new Map<Variant, WrkResult[]>();
      byMix.set(mix, results);
      for (let round = 0; round < ROUNDS; round++) {
        for (const variant of CHOSEN) {
          const r = wrk((servers.get(variant) as Running).port, DURATION_S, CONNECTIONS, mix);
          results.set(variant, [...(results.get(variant) ?? []), r]);
          console.log(`  ${mix} round ${round + 1} ${variant.padEnd(15)} ${fmt(r.rps)} req/s`);
        }
      }
    }
    const cpu = new Map<Variant, number>();
    for (const variant of CHOSEN) {
      const server = servers.get(variant) as Running;
      cpu.set(variant, await cpuPerRequest(server));
      console.log(
        `  CPU ${variant.padEnd(15)} ${fmt(cpu.get(variant) ?? 0, 1)} µs/req at ${fmt(FIXED_RATE)} req/s`,
      );
    }

    for (const [mix, results] of byMix) {
      const of = (variant: Variant, pick: (r: WrkResult) => number) =>
        median((results.get(variant) ?? []).map(pick));
      const bare = of('http-proxy-3', (r) => r.rps);
      console.log(`\nmix: ${mix} (${mixRequests(mix).length} distinct requests)`);
      console.log(
        'variant          req/s (median)  vs http-proxy-3  p50 ms  p99 ms  non-2xx+errors  proxy CPU µs/req (fixed rate, tiny)',
      );
      for (const variant of CHOSEN) {
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
    const ofMix = (mix: Mix, variant: Variant, pick: (r: WrkResult) => number) =>
      median((byMix.get(mix)?.get(variant) ?? []).map(pick));
    const ratios = MIXES.map((mix) => {
      const ratio = ofMix(mix, 'portcullis', (r) => r.rps) / ofMix(mix, 'http-proxy-3', (r) => r.rps);
      return `${mix} ${fmt(ratio, 2)}× (${ratio >= 0.9 ? 'met' : 'NOT met'})`;
    });
    console.log(
      `\ngoals: portcullis ≥ 0.9× bare http-proxy-3 throughput: ${ratios.join(', ')}; banned connections refused ≥ 20k/s: ` +
        `${fmt(dropped / seconds)}/s (${dropped / seconds >= 20_000 ? 'met' : 'NOT met'})`,
    );
    const main = MIXES[0] as Mix;
    const of = (variant: Variant, pick: (r: WrkResult) => number) => ofMix(main, variant, pick);
    const portcullis = of('portcullis', (r) => r.rps);
    if (CHOSEN.includes('portcullis+admin')) {
      const admin = of('portcullis+admin', (r) => r.rps);
      const p99 = (variant: Variant) =>
        fmt(
          of(variant, (r) => r.p99Ms),
          2,
        );
      const cpuOf = (variant: Variant) => fmt(cpu.get(variant) ?? 0, 1);
      console.log(
        `admin (${main} mix): portcullis+admin / portcullis throughput ${fmt(admin / portcullis, 3)}×; ` +
          `p99 ${p99('portcullis+admin')} vs ${p99('portcullis')} ms; ` +
          `CPU ${cpuOf('portcullis+admin')} vs ${cpuOf('portcullis')} µs/req`,
      );
    }
  } finally {
    for (const server of running.reverse()) await server.stop();
  }
}

// Last, so that every module-level constant above is initialised before it runs.
if (process.argv[2] === '--serve')
  await serve(process.argv[3] as NodeVariant | 'drop', Number(process.argv[4]));
else await main();
