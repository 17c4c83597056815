import {
  appendFileSync,
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createActions } from '../../src/actions/routing.js';
import { resolveConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { createGuard } from '../../src/guard.js';
import { startLogJails } from '../../src/sources/log/log-jail.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { makeTempDir } from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait-for.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Quoted-printable soft breaks and escapes, enough to read a body. */
const decodeQp = (raw: string) =>
  raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/** A real SMTP peer on 127.0.0.1 recording each mail's decoded source. */
async function smtpPeer(): Promise<{ mails: string[]; port: number }> {
  const mails: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push(decodeQp(Buffer.concat(chunks).toString('utf8')));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { mails, port: (server.server.address() as AddressInfo).port };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** `Mar  3 09:14:01`, local time, as syslog writes it. */
function syslogNow(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** What an attacker can type as an SSH user name: markup, mentions, a shell substitution. */
const HOSTILE_USER = '<script>alert(1)</script> <!channel> @everyone $(touch CANARY)';

describe('the evidence of a ban reaches the people on call', () => {
  it('an sshd log jail bans: the mail lists the matched lines (HTML escaped), the command gets <matches> as one argument', async () => {
    const dir = makeTempDir('portcullis-matches-');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, 'auth.log');
    writeFileSync(log, '');
    const canary = join(dir, 'canary');
    const runs = join(dir, 'runs');
    const script = join(dir, 'notify.sh');
    // `/bin/sh` is the test's recorder: each run writes its argv, NUL-separated, to a file of its own.
    writeFileSync(
      script,
      `#!/bin/sh\nmkdir -p "${runs}"\nfor a in "$@"; do printf '%s\\0' "$a"; done > "${runs}/$$"\nprintf '%s' "$PORTCULLIS_MATCHES" > "${runs}/$$.env"\n`,
    );
    chmodSync(script, 0o755);
    const peer = await smtpPeer();
    const user = HOSTILE_USER.replace('CANARY', canary);

    const config = resolveConfig(
      {
        jails: {
          sshd: {
            source: { log },
            filter: 'sshd',
            maxretry: 3,
            findtime: '1d',
            bantime: '1h',
            ignoreip: [],
            ignoreself: false,
            actions: [
              {
                email: {
                  to: ['ops@example.com'],
                  from: 'portcullis@host.example',
                  smtp: `smtp://127.0.0.1:${peer.port}`,
                  timeout: '2s',
                },
              },
              { command: { ban: [script, '<ip>', '<matches>'], scope: 'local' } },
            ],
          },
        },
      },
      { env: {} },
    );
    const guard = await createGuard(config, { store: new MemoryStore(), env: {} });
    const setup = createActions(config.jails, config.actions ?? [], config.defaultActions ?? [], {
      logger: silentLogger,
      clock: systemClock,
      baseDir: dir,
    });
    if (setup === null) throw new Error('no actions were built');
    await setup.runner.start(guard);
    const logJails = await startLogJails(guard, { pollIntervalMs: 50, logger: silentLogger });
    cleanups.unshift(async () => {
      await logJails.close();
      await setup.runner.close();
      await guard.close();
    });

    const lines = [
      `${syslogNow()} gate sshd[4101]: Failed password for root from 203.0.113.9 port 40001 ssh2`,
      `${syslogNow()} gate sshd[4102]: Invalid user ${user} from 203.0.113.9 port 40002`,
      `${syslogNow()} gate sshd[4103]: Failed password for invalid user admin from 203.0.113.9 port 40003 ssh2`,
    ];
    appendFileSync(log, `${lines.join('\n')}\n`);
    await waitFor(() => guard.isBanned('203.0.113.9'), { timeoutMs: 5000 });
    await waitFor(() => peer.mails.length === 1 && existsSync(runs) && readdirSync(runs).length === 2, {
      timeoutMs: 5000,
    });

    const mail = peer.mails[0] as string;
    expect(mail).toMatch(/^Subject: portcullis: banned 203\.0\.113\.9 \(sshd, 3 failures\) for 1h$/m);
    const [text, html] = mail.split('Content-Type: text/html');
    for (const line of lines) expect(text).toContain(`  > ${line}`);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt; @everyone $(touch');
    expect(html).not.toContain('<script>');
    expect(html).toContain('gate sshd[4101]: Failed password for root from 203.0.113.9 port 40001 ssh2');

    const runFile = readdirSync(runs).find((name) => !name.endsWith('.env')) as string;
    const argv = readFileSync(join(runs, runFile), 'utf8').split('\0').slice(0, -1);
    // Exactly two arguments: the address, and every matched line in ONE element.
    expect(argv).toEqual(['203.0.113.9', lines.join('\n')]);
    expect(readFileSync(join(runs, `${runFile}.env`), 'utf8')).toBe(lines.join('\n'));
    expect(existsSync(canary)).toBe(false);
  });
});
