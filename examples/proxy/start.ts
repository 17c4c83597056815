/**
 * One command for the proxy example: starts the app (app.ts) and `portcullis run` with
 * portcullis.yaml (the proxy in front of it), and stops both on Ctrl-C or SIGTERM.
 *
 *   node --import tsx examples/proxy/start.ts             # proxy on :8080, app on :3000
 *   PORT=9080 APP_PORT=4000 node --import tsx examples/proxy/start.ts
 *
 * The ports are written into a copy of portcullis.yaml (proxy.listen, proxy.target) in a
 * temporary directory, its relative paths made absolute so they still mean this folder.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isScalar, isSeq, parseDocument } from 'yaml';
import { startApp } from './app.js';

const cli = fileURLToPath(new URL('../../src/surfaces/cli/main.ts', import.meta.url));
const source = fileURLToPath(new URL('./portcullis.yaml', import.meta.url));
const port = Number(process.env.PORT ?? 8080);

const app = await startApp(); // APP_PORT, default 3000
const appPort = (app.address() as { port: number }).port;

const doc = parseDocument(readFileSync(source, 'utf8'));
const listen = doc.getIn(['proxy', 'listen'], true);
for (const item of isSeq(listen) ? listen.items : [listen]) {
  if (isScalar(item) && typeof item.value === 'string') item.value = item.value.replace(/:\d+$/, `:${port}`);
}
doc.setIn(['proxy', 'target'], `http://127.0.0.1:${appPort}`);
const absolute = (path: string) => (isAbsolute(path) ? path : resolve(dirname(source), path));
doc.setIn(['store', 'sqlite'], absolute(doc.getIn(['store', 'sqlite']) as string));
doc.setIn(['proxy', 'access_log', 'path'], absolute(doc.getIn(['proxy', 'access_log', 'path']) as string));
doc.setIn(
  ['jails', 'client-errors', 'source', 'log'],
  absolute(doc.getIn(['jails', 'client-errors', 'source', 'log']) as string),
);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-proxy-example-'));
const config = join(dir, 'portcullis.yaml');
writeFileSync(config, `# Written by examples/proxy/start.ts from ${source}: edit that one.\n${doc}`);

const portcullis = spawn(process.execPath, ['--import', 'tsx', cli, 'run', '-c', config], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
const proxy = `http://127.0.0.1:${port}`;
console.log(`app on http://127.0.0.1:${appPort}, portcullis starting on ${proxy} (pid ${portcullis.pid})
try:
  curl -s ${proxy}/
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\\n' -d password=nope ${proxy}/login; done
  curl -s -o /dev/null -w '%{http_code}\\n' ${proxy}/.env   # scanners: a second probe bans
  tail examples/proxy/access.log`);

const stop = () => portcullis.kill('SIGTERM');
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
portcullis.on('exit', (code) => {
  app.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? 0);
});
