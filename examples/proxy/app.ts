/**
 * The application behind the proxy example: it knows nothing about portcullis. `POST /login`
 * answers 401 unless the password is right; everything else says hello and shows what the proxy
 * told it about the client.
 *
 *   node --import tsx examples/proxy/app.ts        # APP_PORT=3000 by default
 */
import { createServer, type Server } from 'node:http';

const PASSWORD = 'correct horse battery staple';

/** Starts the app on 127.0.0.1:`port`; resolves once listening. */
export function startApp(port = Number(process.env.APP_PORT ?? 3000)): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        const ok = new URLSearchParams(body).get('password') === PASSWORD;
        res.statusCode = ok ? 200 : 401;
        res.end(ok ? 'Welcome!\n' : 'Wrong password.\n');
      });
      return;
    }
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(
      `Hello from the app.\nX-Forwarded-For: ${req.headers['x-forwarded-for']}\n` +
        `X-Real-IP: ${req.headers['x-real-ip']}\nX-Forwarded-Proto: ${req.headers['x-forwarded-proto']}\n`,
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startApp();
  console.log(`app listening on http://127.0.0.1:${(server.address() as { port: number }).port}`);
}
