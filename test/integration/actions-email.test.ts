import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActionContext } from '../../src/actions/action.js';
import { createEmailAction } from '../../src/actions/email/email-action.js';
import { emailOptionsSchema, resolveEmailOptions } from '../../src/actions/email/options.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { guardWithRunner as startGuardWithRunner } from '../helpers/action-runner.js';
import { waitFor } from '../helpers/wait-for.js';

interface Mail {
  from: string;
  to: string[];
  raw: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Quoted-printable soft breaks and escapes, enough to read a body. */
const decodeQp = (raw: string) =>
  raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/** A real SMTP peer on 127.0.0.1 (no TLS, no auth), recording every mail. */
async function smtpPeer(port = 0): Promise<{ mails: Mail[]; port: number; close(): Promise<void> }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: decodeQp(Buffer.concat(chunks).toString('utf8')),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.server.address() as AddressInfo).port;
  let closed = false;
  const close = () =>
    closed
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          closed = true;
          server.close(() => resolve());
        });
  cleanups.push(close);
  return { mails, port: actual, close };
}

const context: ActionContext = { logger: silentLogger, clock: systemClock, baseDir: null };

function emailAction(port: number, extra: Record<string, unknown> = {}) {
  const config = resolveEmailOptions(
    emailOptionsSchema.parse({
      to: ['ops@example.com', 'oncall@example.com'],
      from: 'portcullis@host.example',
      smtp: `smtp://127.0.0.1:${port}`,
      timeout: '2s',
      ...extra,
    }),
  );
  return createEmailAction('email', config, context, {
    backoffMs: 30,
    maxBackoffMs: 200,
    instance: 'test-host',
  });
}

describe('email action over a real SMTP peer', () => {
  it('mails one message with who, jail, failures, ban length and end for a ban a jail decided', async () => {
    const peer = await smtpPeer();
    const action = emailAction(peer.port);
    const { guard, runner } = await startGuardWithRunner([action], cleanups);
    await guard.report('203.0.113.9', { jail: 'sshd', fields: { user: 'root' } });
    await guard.report('203.0.113.9', { jail: 'sshd', fields: { user: 'root' } });
    await runner.idle();
    await waitFor(() => peer.mails.length === 1);
    const [mail] = peer.mails as [Mail];
    expect(mail.from).toBe('portcullis@host.example');
    expect(mail.to).toEqual(['ops@example.com', 'oncall@example.com']);
    expect(mail.raw).toMatch(/^Subject: portcullis: banned 203\.0\.113\.9 \(sshd, 2 failures\) for 1h$/m);
    expect(mail.raw).toContain('Content-Type: text/plain');
    expect(mail.raw).toContain('Content-Type: text/html');
    expect(mail.raw).toMatch(/address\s+203\.0\.113\.9/);
    expect(mail.raw).toContain('2 failures within 10m (user root)');
    expect(mail.raw).toMatch(/ban\s+1h, until \d{4}-\d\d-\d\dT/);
    expect(mail.raw).toContain('instance test-host');
    expect(mail.raw).toContain('<th align="left">address</th><td>203.0.113.9</td>');
    // An unban is not announced by default.
    await guard.unban('203.0.113.9');
    await runner.idle();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(peer.mails).toHaveLength(1);
  });

  it('sends one digest for a wave of 1,000 bans, listing the first 100 and counting the rest', async () => {
    const peer = await smtpPeer();
    const action = emailAction(peer.port);
    const { guard, runner } = await startGuardWithRunner([action], cleanups);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        guard.ban(`198.51.${100 + Math.floor(i / 250)}.${i % 250}`, { jail: 'sshd' }),
      ),
    );
    await runner.idle();
    await waitFor(() => peer.mails.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(peer.mails).toHaveLength(1);
    const raw = (peer.mails[0] as Mail).raw;
    expect(raw).toMatch(/^Subject: portcullis: 1000 bans \(sshd 1000\)$/m);
    expect(raw).toContain('and 900 more');
    expect(raw).toContain('198.51.100.0  sshd');
    expect(action.stats).toMatchObject({ messages: 1, announced: 1000, pending: 0 });
  });

  it('retries while the SMTP server is down and delivers once when it is back, with the bans that came meanwhile', async () => {
    const first = await smtpPeer();
    const port = first.port;
    await first.close();
    const action = emailAction(port);
    const { guard, runner } = await startGuardWithRunner([action], cleanups);
    await guard.ban('192.0.2.10', { jail: 'sshd' });
    await waitFor(
      () => runner.stats().email?.failures !== undefined && (runner.stats().email?.failures ?? 0) >= 1,
    );
    await guard.ban('192.0.2.11', { jail: 'sshd' });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(action.stats.failures).toBeGreaterThanOrEqual(1);
    const peer = await smtpPeer(port);
    await waitFor(() => peer.mails.length >= 1, { timeoutMs: 5000 });
    await runner.idle();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(peer.mails).toHaveLength(1);
    const raw = (peer.mails[0] as Mail).raw;
    expect(raw).toMatch(/^Subject: portcullis: 2 bans/m);
    expect(raw).toContain('192.0.2.10');
    expect(raw).toContain('192.0.2.11');
    expect(action.stats).toMatchObject({ messages: 1, announced: 2, pending: 0 });
  });

  it('authenticates with a password from the environment and never shows it in an error', async () => {
    const seen: { user?: string; pass?: string } = {};
    const server = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onAuth(auth, _session, callback) {
        seen.user = auth.username ?? undefined;
        seen.pass = auth.password ?? undefined;
        if (auth.password === 's3cret-pass') callback(null, { user: auth.username });
        else callback(new Error('bad credentials s3cret-pass'));
      },
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => callback());
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.server.address() as AddressInfo).port;
    const config = resolveEmailOptions(
      emailOptionsSchema.parse({
        to: 'ops@example.com',
        smtp: `smtp://127.0.0.1:${port}`,
        username: 'portcullis',
        password_env: 'SMTP_PASSWORD',
      }),
    );
    const action = createEmailAction('email', config, context, {
      env: { SMTP_PASSWORD: 's3cret-pass' },
      backoffMs: 10,
    });
    await action.start();
    cleanups.unshift(() => action.close());
    const now = Date.now();
    await action.apply([
      {
        target: '192.0.2.1',
        jail: 'sshd',
        reason: 'test',
        startedAt: now,
        expiresAt: null,
        banCount: 1,
        dryRun: false,
        origin: '',
      },
    ]);
    expect(seen).toEqual({ user: 'portcullis', pass: 's3cret-pass' });
    expect(JSON.stringify(config)).not.toContain('s3cret-pass');

    const wrong = createEmailAction('email', config, context, {
      env: { SMTP_PASSWORD: 'wrong-pass' },
      backoffMs: 10,
    });
    await wrong.start();
    cleanups.unshift(() => wrong.close());
    const failure = await wrong
      .apply([
        {
          target: '192.0.2.2',
          jail: 'sshd',
          reason: 'test',
          startedAt: now,
          expiresAt: null,
          banCount: 1,
          dryRun: false,
          origin: '',
        },
      ])
      .then(
        () => null,
        (error: Error) => error,
      );
    // 535 is a refusal for good: dropped and logged, not retried; nothing is thrown at the runner.
    expect(failure).toBeNull();
    expect(wrong.stats.dropped).toBe(1);
  });

  it('refuses to start without its password', async () => {
    const config = resolveEmailOptions(
      emailOptionsSchema.parse({ to: 'ops@example.com', username: 'u', password_env: 'NOPE_PASSWORD' }),
    );
    const action = createEmailAction('email', config, context, { env: {} });
    await expect(action.start()).rejects.toThrow(/environment variable NOPE_PASSWORD is not set/);
    await action.close();
  });
});
