/**
 * A small Express app protected by portcullis: a login route that reports wrong passwords with
 * `guard.fail()`, and the bundled scanner, traversal, bad-bot and flood jails on every request.
 *
 *   node --import tsx examples/express-app/server.ts        # PORT=3000 by default; 0: any free port
 */
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createGuard } from '../../src/index.js';
import { portcullis } from '../../src/surfaces/express/index.js';

const PASSWORD = 'correct horse battery staple';
const port = Number(process.env.PORT ?? 3000);

const guard = await createGuard(fileURLToPath(new URL('./portcullis.yaml', import.meta.url)));
guard.on('ban', (decision, source) => {
  if (source === 'local') console.log(`ban ${decision.target} (${decision.jail}: ${decision.reason})`);
});
guard.on('unban', (event) => console.log(`unban ${event.target} (${event.reason})`));

const app = express();
const shield = portcullis(guard);
app.use(shield); // first: a banned client never reaches a route
app.use(express.urlencoded({ extended: false }));

app.get('/', (_req, res) => {
  res
    .type('html')
    .send(
      '<form method="post" action="/login"><input name="password" type="password"><button>Log in</button></form>',
    );
});

app.post('/login', async (req, res) => {
  if (req.body?.password === PASSWORD) {
    res.send('Welcome!\n');
    return;
  }
  // No log line and no status-code filter needed: the application knows this was a failure.
  const { outcome, failures } = await shield.fail(req, 'login', { path: '/login' });
  res
    .status(401)
    .send(`Wrong password (${outcome}${failures === undefined ? '' : `, ${failures} so far`}).\n`);
});

const server = app.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`; // PORT=0: any free port
  console.log(`listening on ${url}`);
  console.log(`try: for i in 1 2 3 4; do curl -s -d password=nope ${url}/login; done`);
  console.log(`     curl -si ${url}/.env   # scanners: a second probe bans`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    void guard.close().then(() => process.exit(0));
  });
}
