import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createManualClock } from '../../src/core/clock.js';
import { bundledHttpRules } from '../../src/detection/filters/http/rules.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { createHttpPipeline } from '../../src/sources/http/pipeline.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { event } from '../helpers/http-events.js';

/**
 * Replays the recorded-style sessions of `test/fixtures/http-corpus/sessions/` (format in that
 * folder's README) through the real HTTP pipeline with every bundled rule as a jail, a memory
 * store and a manual clock. As a surface would: a banned client is refused before anything
 * else, a request over a rate is answered 429 and never observed, the rest are observed with
 * their recorded status. Benign sessions must end with no ban; malicious ones banned by the rule
 * their header names.
 */
const SESSIONS = new URL('../fixtures/http-corpus/sessions/', import.meta.url);
const CLIENT = '203.0.113.50';
const local = { ignoreip: [], ignoreself: false };

interface Request {
  t_ms: number;
  method?: string;
  url: string;
  status?: number;
  user_agent?: string;
  referer?: string;
  headers?: Record<string, string>;
}

interface Session {
  session: string;
  kind: 'benign' | 'malicious';
  description: string;
  defaults?: Omit<Request, 't_ms' | 'url'>;
  expect: { bans: 0 } | { banned_by: string };
  requests: Request[];
}

function loadSession(file: string): Session {
  const [head, ...lines] = readFileSync(new URL(file, SESSIONS), 'utf8').trimEnd().split('\n');
  const header = JSON.parse(head as string) as Omit<Session, 'requests'>;
  return { ...header, requests: lines.map((line) => JSON.parse(line) as Request) };
}

const sessions = readdirSync(SESSIONS)
  .filter((f) => f.endsWith('.jsonl'))
  .sort()
  .map(loadSession);

let guards: Guard[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(guards.map((g) => g.close()));
  guards = [];
});

interface Replay {
  guard: Guard;
  observed: number;
  rateLimited: number;
  refused: number;
}

async function replay(session: Session): Promise<Replay> {
  const clock = createManualClock();
  const start = clock.now();
  // The rate limiter (rate-limiter-flexible) reads Date; keep it on the manual clock.
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(start);
  const jails = Object.fromEntries(
    bundledHttpRules().map((rule) => [rule, { source: 'http' as const, filter: rule, ...local }]),
  );
  const guard = await createGuard({ jails }, { clock, store: new MemoryStore(), env: {} });
  guards.push(guard);
  const pipeline = createHttpPipeline(guard);
  const out: Replay = { guard, observed: 0, rateLimited: 0, refused: 0 };
  const d = session.defaults ?? {};
  for (const r of session.requests) {
    clock.set(start + r.t_ms);
    vi.setSystemTime(start + r.t_ms);
    if (pipeline.check(CLIENT) !== undefined) {
      out.refused++;
      continue;
    }
    const method = r.method ?? d.method ?? 'GET';
    const userAgent = r.user_agent ?? d.user_agent ?? '';
    const referer = r.referer ?? d.referer ?? '';
    const headers: Record<string, string> = {
      host: 'shop.example',
      ...d.headers,
      ...r.headers,
      ...(userAgent === '' ? {} : { 'user-agent': userAgent }),
      ...(referer === '' ? {} : { referer }),
    };
    const req = { method, url: r.url, headers } as unknown as IncomingMessage;
    const limited = pipeline.rate(req, CLIENT, r.url);
    if (limited !== undefined && (await limited) !== undefined) {
      out.rateLimited++;
      continue;
    }
    out.observed++;
    await pipeline.observe(
      event({
        ip: CLIENT,
        timeMs: clock.now(),
        method,
        url: r.url,
        host: 'shop.example',
        status: r.status ?? d.status ?? 200,
        userAgent,
        referer,
        headers,
      }),
    );
  }
  pipeline.close();
  return out;
}

describe('the HTTP corpus through every bundled rule', () => {
  it('has the sessions the rules were tuned on', () => {
    const names = sessions.map((s) => s.session);
    expect(names).toEqual(
      expect.arrayContaining([
        'site-visit',
        'gallery-360-thumbnails',
        'article-25-missing-images',
        'spa-polling',
        'login-typos',
        'crawler-polite',
        'mobile-parallel',
        'benign-lookalikes',
        'scanner-wordlist',
        'brute-force',
        'flood-pages',
        'sqlmap-browser-ua',
      ]),
    );
  });

  for (const session of sessions.filter((s) => s.kind === 'benign')) {
    it(`${session.session}: no rule bans (${session.requests.length} requests)`, async () => {
      const { guard, observed, rateLimited } = await replay(session);
      expect(guard.lookup(CLIENT)?.jail ?? 'not banned').toBe('not banned');
      expect(rateLimited).toBe(0);
      expect(observed).toBe(session.requests.length);
    });
  }

  for (const session of sessions.filter((s) => s.kind === 'malicious')) {
    const jail = 'banned_by' in session.expect ? session.expect.banned_by : '?';
    it(`${session.session}: banned by ${jail}`, async () => {
      const { guard, refused } = await replay(session);
      expect(guard.lookup(CLIENT)?.jail).toBe(jail);
      expect(refused).toBeGreaterThan(0);
    });
  }
});
