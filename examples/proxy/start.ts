/**
 * One command for the proxy example: starts the app (app.ts, on :3000) and `portcullis run` with
 * portcullis.yaml (the proxy on :8080), and stops both on Ctrl-C.
 *
 *   node --import tsx examples/proxy/start.ts
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startApp } from './app.js';

const cli = fileURLToPath(new URL('../../src/surfaces/cli/main.ts', import.meta.url));
const config = fileURLToPath(new URL('./portcullis.yaml', import.meta.url));

const app = await startApp();
const portcullis = spawn(process.execPath, ['--import', 'tsx', cli, 'run', '-c', config], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
console.log(`app on http://127.0.0.1:3000, portcullis starting on http://127.0.0.1:8080 (pid ${portcullis.pid})
try:
  curl -s http://127.0.0.1:8080/
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\\n' -d password=nope http://127.0.0.1:8080/login; done
  curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8080/.env   # scanners: a second probe bans
  tail examples/proxy/access.log`);

const stop = () => portcullis.kill('SIGTERM');
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
portcullis.on('exit', (code) => {
  app.close();
  process.exit(code ?? 0);
});
