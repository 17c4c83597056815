// The smoke test of the built image, run INSIDE its root filesystem (chroot, as the image's user,
// in a network namespace of its own: only loopback) by container.test.ts. Node built-ins only.
//
//   node container-smoke.mjs '<json: { entrypoint, cmd, env, workdir, healthcheck }>'
//
// It starts the image's ENTRYPOINT + CMD exactly (default configuration, SQLite store), puts a demo
// app on 127.0.0.1:3000 (the default proxy target), runs the HEALTHCHECK command, gets a client
// banned by the bundled scanners jail (two probes for /.env), checks that the client then gets 403
// and another one 200, and that the ban survives a restart (the data volume). Prints one JSON line
// (`{"ok":true,...}`) and exits 0, or prints what failed and exits 1.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, request } from 'node:http';

const image = JSON.parse(process.argv[2] ?? '{}');
const BANNED = '127.0.0.2';
const OTHER = '127.0.0.3';
const steps = [];
const started = performance.now();

function step(name, extra = {}) {
  steps.push({ name, atMs: Math.round(performance.now() - started), ...extra });
}

function get(path, from) {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: 8080, path, localAddress: from, agent: false, timeout: 5_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function until(what, predicate, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await predicate()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function startPortcullis(output) {
  const [command, ...args] = [...image.entrypoint, ...image.cmd];
  const child = spawn(command, args, {
    cwd: image.workdir || '/',
    env: image.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk) => output.push(chunk.toString()));
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const result = await child.exited;
  clearTimeout(timer);
  return result;
}

function runHealthcheck() {
  // ["CMD", argv...] (exec form) as HEALTHCHECK stores it.
  const test = image.healthcheck ?? [];
  if (test[0] !== 'CMD') throw new Error(`unexpected HEALTHCHECK form ${JSON.stringify(test)}`);
  const [command, ...args] = test.slice(1);
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: image.env, stdio: 'ignore' });
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
}

const app = createServer((req, res) => {
  res.statusCode = req.url === '/' ? 200 : 404;
  res.end(req.url === '/' ? 'demo app\n' : 'not found\n');
});
const output = [];
let portcullis;
let result;
try {
  await new Promise((resolve, reject) => {
    app.once('error', reject);
    app.listen(3000, '127.0.0.1', resolve);
  });
  step('app');
  portcullis = startPortcullis(output);
  await until('the proxy to answer 200', async () => (await get('/', BANNED)) === 200);
  step('proxy up', { uid: process.getuid?.() });

  await until('the HEALTHCHECK to pass', async () => (await runHealthcheck()) === 0, 15_000);
  step('healthcheck');

  const probes = [await get('/.env', BANNED), await get('/.env', BANNED)];
  step('probes', { probes });
  const banned = await get('/', BANNED);
  const other = await get('/', OTHER);
  if (banned !== 403) throw new Error(`the probing client got ${banned} for /, not 403`);
  if (other !== 200) throw new Error(`another client got ${other} for /, not 200`);
  step('banned', { banned, other });

  const stopped = await stop(portcullis);
  if (stopped.code !== 0) throw new Error(`portcullis stopped with ${JSON.stringify(stopped)}, not 0`);
  if (!existsSync('/var/lib/portcullis/portcullis.db')) throw new Error('no SQLite file on the data volume');
  step('stopped', stopped);
  portcullis = startPortcullis(output);
  await until('the restarted proxy', async () => (await get('/', OTHER)) === 200);
  const afterRestart = await get('/', BANNED);
  if (afterRestart !== 403) throw new Error(`after a restart the banned client got ${afterRestart}, not 403`);
  step('ban survives restart', { afterRestart });
  result = { ok: true, steps };
} catch (error) {
  result = { ok: false, error: error.message, steps, output: output.join('').slice(-4000) };
} finally {
  if (portcullis !== undefined) await stop(portcullis);
  app.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
