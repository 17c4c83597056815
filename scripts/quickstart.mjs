#!/usr/bin/env node
/**
 * `npm start`: the quick start. Starts the demo app (examples/quickstart/app.mjs) and, in front of
 * it, `portcullis run` from dist/ (built by `prestart`) with examples/quickstart/portcullis.yaml;
 * prints what listens where and what to try; stops both on SIGTERM or SIGINT.
 *
 * Environment:
 * - `PORT`: the proxy's port, default 8080; `APP_PORT`: the demo app's, default 3000. `0` takes any
 *   free port. A port set here must be free; a busy default is replaced by a free port, and said so.
 * - `PORTCULLIS_SQLITE_PATH` (default examples/quickstart/quickstart.db) and the other
 *   `PORTCULLIS_*` overrides of src/config/load.ts reach `portcullis run` unchanged.
 *
 * Why a launcher, `exec`ed by package.json: npm runs a script through `sh -c` and forwards SIGTERM
 * and SIGINT to that shell only. dash (Debian's sh) does not exec a lone command: it dies of
 * SIGTERM and leaves node running, reparented to init, and waits through SIGINT for a child that
 * never got it. `exec` makes this script npm's direct child, and it stops its own children. Where
 * the shell cannot exec, the watch on the parent below still stops everything once the shell dies.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { startDemoApp } from '../examples/quickstart/app.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/surfaces/cli/main.js');
const SOURCE_CONFIG = join(ROOT, 'examples/quickstart/portcullis.yaml');
const HOST = '127.0.0.1';
/** How long `portcullis run` may take to stop gracefully before it is killed. */
const STOP_TIMEOUT_MS = 10_000;
/** How often the launcher checks that the process that started it is still there. */
const PARENT_CHECK_MS = 500;

const note = (text) => process.stdout.write(`quickstart: ${text}\n`);
const fail = (status, text) => {
  process.stderr.write(`quickstart: ${text}\n`);
  process.exit(status);
};
// A closed terminal or pipe must not turn into an uncaught EPIPE while stopping.
process.stdout.on('error', () => {});

/** `PORT`, `APP_PORT`: a port number, or the default when unset. Exits 2 on anything else. */
function portFromEnv(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === '') return { port: fallback, explicit: false };
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65_535) {
    fail(
      2,
      `${name}: expected a port number from 0 to 65535 (0: any free port), got ${JSON.stringify(text)}`,
    );
  }
  return { port: Number(text), explicit: true };
}

/** Resolves true when `port` can be listened on now (it may of course be taken a moment later). */
function isFree(port) {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => (error.code === 'EADDRINUSE' ? resolve(false) : reject(error)));
    probe.listen(port, HOST, () => probe.close(() => resolve(true)));
  });
}

/** The port to use for `name`: its own, or 0 (any free one) when a default is busy. */
async function choosePort(name, { port, explicit }) {
  const free =
    port === 0 ||
    (await isFree(port).catch((error) =>
      fail(1, `${name}=${port}: cannot listen on ${HOST}:${port}: ${error.code ?? error.message}`),
    ));
  if (free) return port;
  if (explicit)
    fail(1, `${name}=${port}: ${HOST}:${port} is already in use; choose another (${name}=0: any free port)`);
  note(`port ${port} (the default ${name}) is in use; taking a free port instead (set ${name} to choose)`);
  return 0;
}

/**
 * Writes the example config with the ports filled in, to a temporary directory; its one relative
 * path (the SQLite file) is made absolute so it still means examples/quickstart/.
 */
function writeConfig(dir, proxyPort, appUrl) {
  const doc = parseDocument(readFileSync(SOURCE_CONFIG, 'utf8'));
  doc.setIn(['proxy', 'listen'], `${HOST}:${proxyPort}`);
  doc.setIn(['proxy', 'target'], appUrl);
  for (const path of [
    ['store', 'sqlite'],
    ['store', 'sqlite', 'path'],
  ]) {
    const value = doc.getIn(path);
    if (typeof value === 'string' && value !== ':memory:' && !isAbsolute(value)) {
      doc.setIn(path, resolve(dirname(SOURCE_CONFIG), value));
    }
  }
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(file, `# Written by scripts/quickstart.mjs from ${SOURCE_CONFIG}: edit that one.\n${doc}`);
  return file;
}

/** The SQLite file portcullis will use, as `portcullis run` resolves it. */
function sqlitePath(env) {
  const fromEnv = env.PORTCULLIS_SQLITE_PATH;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const store = parseDocument(readFileSync(SOURCE_CONFIG, 'utf8')).toJS().store?.sqlite;
  const path = typeof store === 'string' ? store : (store?.path ?? './portcullis.db');
  return path === ':memory:' ? path : resolve(dirname(SOURCE_CONFIG), path);
}

function banner(proxyUrl, appUrl, store) {
  const shown = (path) => (path.startsWith(ROOT) ? relative(process.cwd(), path) || path : path);
  const config = shown(SOURCE_CONFIG);
  return `
portcullis quick start: the portcullis reverse proxy in front of a demo app
  portcullis proxy  ${proxyUrl}   <- open this one
  demo app          ${appUrl}   (straight to the app, unguarded)
  store             SQLite ${shown(store)} (no Redis)
  jails             login: 3 wrong passwords ban for 1m; scanners: 2 probes like /.env ban for 1m

Try, from another terminal:
  curl ${proxyUrl}/
  # wrong passwords: 401 401 401, then 403: 127.0.0.1 is banned
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\\n' -d password=wrong ${proxyUrl}/login; done
  # a scanner, from a second loopback address (Linux): 404 404, then 403
  for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code}\\n' --interface 127.0.0.2 ${proxyUrl}/.env; done

Ctrl-C or SIGTERM stops both; SIGHUP reloads ${config}.
`;
}

if (!existsSync(CLI))
  fail(1, `${relative(process.cwd(), CLI)} is missing: run \`npm run build\` first (npm start does)`);
const env = { ...process.env };
if (env.PORTCULLIS_SQLITE_PATH && env.PORTCULLIS_SQLITE_PATH !== ':memory:') {
  // portcullis would resolve it against the generated file's temporary directory.
  env.PORTCULLIS_SQLITE_PATH = resolve(env.PORTCULLIS_SQLITE_PATH);
}
const proxyPort = await choosePort('PORT', portFromEnv('PORT', 8080));
const appPort = await choosePort('APP_PORT', portFromEnv('APP_PORT', 3000));
const app = await startDemoApp({ port: appPort, host: HOST }).catch((error) =>
  fail(1, `APP_PORT=${appPort}: the demo app cannot listen on ${HOST}:${appPort}: ${error.code ?? error}`),
);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-quickstart-'));
let configFile = writeConfig(dir, proxyPort, app.url);

const child = spawn(process.execPath, [CLI, 'run', '-c', configFile], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env,
});
const running = () => child.exitCode === null && child.signalCode === null;
// Whatever ends this process, portcullis does not outlive it.
process.on('exit', () => {
  if (running()) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

// portcullis logs JSON lines; they pass through as they are. Its proxy-listening event has the
// port it really bound (PORT=0), after which the banner follows.
let announced = false;
let partial = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  if (announced) return;
  const lines = (partial + chunk).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) {
    if (!line.includes('"proxy-listening"')) continue;
    const url = JSON.parse(line).addresses?.[0];
    if (typeof url !== 'string') continue;
    announced = true;
    process.stdout.write(banner(url, app.url, sqlitePath(env)));
    break;
  }
});

let stopping = false;
function stop() {
  if (!running()) return;
  if (stopping) {
    child.kill('SIGKILL'); // a second Ctrl-C: do not wait
    return;
  }
  stopping = true;
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS).unref();
}
// A Ctrl-C in a terminal reaches portcullis itself too; the SIGTERM sent here is then harmless.
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGHUP', () => {
  configFile = writeConfig(dir, proxyPort, app.url);
  child.kill('SIGHUP');
});
// Started by a shell that could not exec, or by an npm that died: when the parent goes, so do we.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, PARENT_CHECK_MS).unref();

// 'close', not 'exit': the last log lines portcullis wrote must be passed on before we exit.
child.on('close', (code, signal) => {
  void app.close().then(() => {
    // Exit 0 unasked: a Ctrl-C reached portcullis before it reached us.
    if (stopping || code === 0) {
      note('stopped: portcullis and the demo app');
      process.exit(code ?? (signal === 'SIGKILL' ? 1 : 0));
    }
    process.stderr.write(
      `quickstart: portcullis exited (${signal ?? `status ${code}`}) before being asked to\n`,
    );
    process.exit(code || 1);
  });
});
