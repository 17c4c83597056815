/**
 * The quick start's demo application: plain `node:http`, no dependencies, and it knows nothing
 * about portcullis. `GET /` is a page with a login form, `POST /login` answers 401 to a wrong
 * password and 200 to the right one (`demo`), every other path 404.
 *
 *   APP_PORT=3000 node examples/quickstart/app.mjs     # on its own; npm start runs it for you
 */
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

/** The one right password. It is a demo. */
export const PASSWORD = 'demo';

const PAGE = `<!doctype html>
<title>portcullis demo</title>
<h1>Hello from the demo app</h1>
<p>This page came through the portcullis reverse proxy. Log in (the password is "${PASSWORD}"):</p>
<form method="post" action="/login"><input name="password" type="password"> <button>Log in</button></form>
<p>Three wrong passwords and portcullis refuses this address for a minute.</p>
`;

function handle(req, res) {
  if (req.method === 'POST' && req.url === '/login') {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const ok = new URLSearchParams(body).get('password') === PASSWORD;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(ok ? 'Welcome!\n' : 'Wrong password.\n');
    });
    return;
  }
  if (req.method === 'GET' && req.url === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('Not found.\n');
}

/**
 * Starts the demo app on `host`:`port` (port 0: any free port); resolves once it listens, rejects
 * with the listen error (`EADDRINUSE`, ...). `close()` also ends idle keep-alive connections.
 * @param {{ port?: number, host?: string }} [options] default port `APP_PORT` or 3000, host 127.0.0.1
 * @returns {Promise<{ url: string, port: number, close(): Promise<void> }>}
 */
export function startDemoApp({ port = Number(process.env.APP_PORT ?? 3000), host = '127.0.0.1' } = {}) {
  const server = createServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = server.address().port;
      resolve({
        url: `http://${host}:${bound}`,
        port: bound,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await startDemoApp();
  console.log(`demo app listening on ${app.url}`);
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void app.close());
}
