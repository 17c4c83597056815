import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActionContext } from '../../src/actions/action.js';
import { resolveSmsOptions, smsOptionsSchema } from '../../src/actions/sms/options.js';
import { createSmsAction } from '../../src/actions/sms/sms-action.js';
import { resolveWebhookOptions, webhookOptionsSchema } from '../../src/actions/webhook/options.js';
import { createWebhookAction } from '../../src/actions/webhook/webhook-action.js';
import { systemClock } from '../../src/core/clock.js';
import type { Logger } from '../../src/core/logger.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Decision } from '../../src/core/types.js';
import { guardWithRunner as startGuardWithRunner } from '../helpers/action-runner.js';
import { waitFor } from '../helpers/wait-for.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A local HTTP receiver; `answer` picks each response (default 200). */
async function receiver(answer: (n: number, res: ServerResponse) => void = (_n, res) => res.end('ok')) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      answer(received.length, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { received, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (fields: object, message?: string) => lines.push(`${JSON.stringify(fields)} ${message ?? ''}`);
  return { lines, debug: log, info: log, warn: log, error: log };
}

const context = (logger: Logger = silentLogger): ActionContext => ({
  logger,
  clock: systemClock,
  baseDir: null,
});
const tuning = { backoffMs: 30, maxBackoffMs: 200, instance: 'test-host' };

function webhook(url: string, extra: Record<string, unknown> = {}, logger?: Logger) {
  const config = resolveWebhookOptions(webhookOptionsSchema.parse({ url, timeout: '1s', ...extra }));
  return createWebhookAction('webhook', config, context(logger), tuning);
}

function ban(target: string, extra: Partial<Decision> = {}): Decision {
  const now = Date.now();
  return {
    target,
    jail: 'sshd',
    reason: '5 failures within 10m',
    startedAt: now,
    expiresAt: now + 3_600_000,
    banCount: 1,
    dryRun: false,
    origin: 'host:1',
    ...extra,
  };
}

async function started<T extends { start(): Promise<void>; close(): Promise<void> }>(action: T): Promise<T> {
  await action.start();
  cleanups.unshift(() => action.close());
  return action;
}

describe('webhook action', () => {
  it('posts the body of each format', async () => {
    const peer = await receiver();
    for (const format of ['slack', 'discord', 'teams', 'generic'] as const) {
      const action = await started(
        webhook(`${peer.url}/${format}`, { format, headers: { Authorization: 'Bearer tok-123456' } }),
      );
      await action.apply([ban('203.0.113.9')]);
    }
    expect(peer.received.map((r) => r.path)).toEqual(['/slack', '/discord', '/teams', '/generic']);
    for (const r of peer.received) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers.authorization).toBe('Bearer tok-123456');
    }
    const [slack, discord, teams, generic] = peer.received.map((r) => JSON.parse(r.body));
    expect(slack.text).toBe('portcullis on test-host: banned 203.0.113.9 (sshd, 5 failures) for 1h');
    expect(slack.blocks[1].text.text).toContain('203.0.113.9  sshd  5 failures within 10m  1h until');
    expect(discord.content).toBe('portcullis on test-host: banned 203.0.113.9 (sshd, 5 failures) for 1h');
    expect(discord.embeds[0].description).toContain('203.0.113.9');
    expect(teams.type).toBe('message');
    expect(teams.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(teams.attachments[0].content.type).toBe('AdaptiveCard');
    expect(generic).toMatchObject({
      event: 'ban',
      instance: 'test-host',
      total: 1,
      jails: { sshd: 1 },
      omitted: 0,
      decisions: [
        { target: '203.0.113.9', jail: 'sshd', failures: 5, banLength: '1h', banCount: 1, dryRun: false },
      ],
    });
  });

  it('delivers once after a 500, through the runner, for a ban a jail decided', async () => {
    const peer = await receiver((n, res) => {
      res.statusCode = n === 1 ? 500 : 200;
      res.end(n === 1 ? 'boom' : 'ok');
    });
    const action = webhook(`${peer.url}/hook`);
    const { guard, runner } = await startGuardWithRunner([action], cleanups);
    await guard.report('203.0.113.9', { jail: 'sshd' });
    await guard.report('203.0.113.9', { jail: 'sshd' });
    await waitFor(() => peer.received.length === 2);
    await runner.idle();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(peer.received).toHaveLength(2);
    expect(peer.received[0]?.body).toBe(peer.received[1]?.body);
    expect(action.stats).toMatchObject({ messages: 1, failures: 1, pending: 0 });
    expect(runner.stats().webhook?.failures).toBe(1);
  });

  it('sends one digest request for a wave of 1,000 bans', async () => {
    const peer = await receiver();
    const action = webhook(`${peer.url}/hook`, { format: 'slack' });
    const { guard, runner } = await startGuardWithRunner([action], cleanups);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        guard.ban(`10.1.${Math.floor(i / 250)}.${i % 250}`, { jail: 'sshd' }),
      ),
    );
    await runner.idle();
    await waitFor(() => peer.received.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(peer.received).toHaveLength(1);
    const body = JSON.parse(peer.received[0]?.body ?? '{}');
    expect(body.text).toBe('portcullis on test-host: 1000 bans (sshd 1000)');
    expect(body.blocks[1].text.text).toMatch(/and 9\d\d more```$/);
    expect(body.blocks[1].text.text.length).toBeLessThanOrEqual(3000);
  });

  it('collects a digest window into one request and caps messages per minute, summarising the rest', async () => {
    const peer = await receiver();
    const digest = await started(webhook(`${peer.url}/d`, { digest: '300ms' }));
    await digest.apply([ban('192.0.2.1')]);
    await digest.apply([ban('192.0.2.2', { jail: 'web' })]);
    expect(peer.received).toHaveLength(0);
    await waitFor(() => peer.received.length === 1);
    expect(JSON.parse(peer.received[0]?.body ?? '{}')).toMatchObject({
      total: 2,
      jails: { sshd: 1, web: 1 },
    });

    const limited = await started(webhook(`${peer.url}/l`, { max_per_minute: 2 }));
    for (let i = 1; i <= 6; i++) await limited.apply([ban(`198.51.100.${i}`)]);
    const toL = () => peer.received.filter((r) => r.path === '/l');
    expect(toL()).toHaveLength(2);
    // The rest waits for the window (a minute) and goes as one summary, at the latest at close.
    await limited.close();
    expect(toL()).toHaveLength(3);
    expect(JSON.parse(toL()[2]?.body ?? '{}')).toMatchObject({ total: 4 });
  });

  it('drops a 4xx with a log line that shows neither the URL path nor the headers, and honours 429 Retry-After', async () => {
    const logger = recordingLogger();
    const peer = await receiver((n, res) => {
      if (n === 1) {
        res.statusCode = 404;
        res.end('no such hook');
      } else if (n === 2) {
        res.statusCode = 429;
        res.setHeader('retry-after', '1');
        res.end();
      } else res.end('ok');
    });
    const action = await started(
      webhook(
        `${peer.url}/services/T000/B000/XYZSECRET`,
        { headers: { 'X-Token': 'header-secret' } },
        logger,
      ),
    );
    await action.apply([ban('192.0.2.1')]);
    expect(action.stats).toMatchObject({ dropped: 1, pending: 0 });
    const started429 = Date.now();
    await expect(action.apply([ban('192.0.2.2')])).rejects.toThrow(/HTTP 429/);
    await waitFor(() => peer.received.length === 3, { timeoutMs: 5000 });
    expect(Date.now() - started429).toBeGreaterThanOrEqual(900);
    const log = logger.lines.join('\n');
    expect(log).toContain('HTTP 404');
    expect(log).not.toContain('XYZSECRET');
    expect(log).not.toContain('header-secret');
  });

  it('retries a request that times out', async () => {
    const peer = await receiver((n, res) => {
      if (n === 1) setTimeout(() => res.end('late'), 1500);
      else res.end('ok');
    });
    const action = await started(webhook(`${peer.url}/slow`, { timeout: '200ms' }));
    await expect(action.apply([ban('192.0.2.1')])).rejects.toThrow(/no answer within 200 ms/);
    await waitFor(() => action.stats.messages === 1, { timeoutMs: 5000 });
  });

  it('reads its URL from an environment variable and keeps it out of the logged config', async () => {
    const peer = await receiver();
    const config = resolveWebhookOptions(webhookOptionsSchema.parse({ url_env: 'HOOK_URL' }));
    const action = await started(
      createWebhookAction('webhook', config, context(), {
        ...tuning,
        env: { HOOK_URL: `${peer.url}/from-env` },
      }),
    );
    await action.apply([ban('192.0.2.1')]);
    expect(peer.received[0]?.path).toBe('/from-env');
    const inline = resolveWebhookOptions(
      webhookOptionsSchema.parse({
        url: 'https://hooks.slack.com/services/T0/B0/abcdef',
        headers: { A: 'b-secret' },
      }),
    );
    expect(JSON.stringify(inline)).not.toContain('abcdef');
    expect(JSON.stringify(inline)).not.toContain('b-secret');
  });
});

describe('sms action', () => {
  it('posts Twilio form fields with basic auth to each number, and retries after a 500 without texting twice', async () => {
    const peer = await receiver((n, res) => {
      res.statusCode = n === 2 ? 500 : 201;
      res.end('{}');
    });
    const config = resolveSmsOptions(
      smsOptionsSchema.parse({
        to: ['+15550100', '+15550101'],
        from: '+15550199',
        url: `${peer.url}/2010-04-01/Accounts/<account>/Messages.json`,
        account: 'AC123',
        token_env: 'TWILIO_TOKEN',
      }),
    );
    const action = await started(
      createSmsAction('sms', config, context(), { ...tuning, env: { TWILIO_TOKEN: 'tok-secret' } }),
    );
    await expect(action.apply([ban('203.0.113.9')])).rejects.toThrow(/HTTP 500/);
    await waitFor(() => action.stats.messages === 1, { timeoutMs: 5000 });
    // First number once, second after its 500: three requests, two texts.
    expect(peer.received).toHaveLength(3);
    const forms = peer.received.map((r) => Object.fromEntries(new URLSearchParams(r.body)));
    expect(forms.map((f) => f.To)).toEqual(['+15550100', '+15550101', '+15550101']);
    expect(forms[0]).toEqual({
      To: '+15550100',
      From: '+15550199',
      Body: 'portcullis: banned 203.0.113.9 (sshd, 5 failures) for 1h',
    });
    const r = peer.received[0] as Received;
    expect(r.path).toBe('/2010-04-01/Accounts/AC123/Messages.json');
    expect(r.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from('AC123:tok-secret').toString('base64')}`);
  });

  it('texts a digest of a wave in one short message', async () => {
    const peer = await receiver((_n, res) => res.end('{}'));
    const config = resolveSmsOptions(
      smsOptionsSchema.parse({
        to: '+15550100',
        from: '+15550199',
        url: `${peer.url}/sms`,
        account: 'AC1',
        token_env: 'T',
      }),
    );
    const action = await started(
      createSmsAction('sms', config, context(), { ...tuning, env: { T: 'token-1' } }),
    );
    const wave = Array.from({ length: 1000 }, (_, i) =>
      ban(`10.0.${Math.floor(i / 250)}.${i % 250}`, { jail: i < 998 ? 'sshd' : 'web' }),
    );
    await action.apply(wave);
    expect(peer.received).toHaveLength(1);
    const body = new URLSearchParams(peer.received[0]?.body).get('Body') ?? '';
    expect(body).toBe('portcullis: 1000 bans (sshd 998, web 2)');
    expect(body.length).toBeLessThanOrEqual(160);
  });
});
