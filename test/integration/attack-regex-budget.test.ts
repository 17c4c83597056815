import { createServer } from 'node:http';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText, resolveConfig } from '../../src/config/load.js';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createManualClock } from '../../src/core/clock.js';
import { ConfigError } from '../../src/core/errors.js';
import { setRe2BudgetLimits } from '../../src/detection/filters/re2-cache.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { portcullis } from '../../src/surfaces/express/index.js';
import { type Listening, listen, send } from '../helpers/http-client.js';

/**
 * Issue 8, item 8: expensive user regexes must not hold the event loop. A pattern whose matching
 * cost is past the budget's hard limit is refused at load, one past the soft limit is accepted
 * with a warning, and what a filter scans of a field is capped, so an attacker's 15 KB headers
 * cost every other client little, even with five slow-but-accepted jails.
 */
const local = { ignoreip: [], ignoreself: false, maxretry: 1_000 };
/** A counted repetition after a star: RE2's DFA explodes and thrashes (~1 ms per KiB here, 3× the hard limit). */
const PATHOLOGICAL = '[ab]*a[ab]{60}K';
/**
 * The same shape, shorter: 60-210 µs per KiB from one measurement to the next, always under the
 * hard limit (300) and often over the soft one (100): slow, accepted, five of them.
 */
const SLOW = ['[ab]*a[ab]{10}K', '[ab]*b[ab]{10}K', '[ab]*a[ab]{10}L', '[ab]*b[ab]{10}L', '[ab]*a[ab]{10}M'];

/** `n` characters of a and b in no repeating order (a periodic text would let the DFA cache it). */
function abText(n: number): string {
  let state = 0x2545f491;
  let text = '';
  for (let i = 0; i < n; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    text += state & 1 ? 'a' : 'b';
  }
  return text;
}

function uaJails(patterns: readonly string[]): NonNullable<PortcullisOptions['jails']> {
  return Object.fromEntries(
    patterns.map((pattern, i) => [
      `ua${i + 1}`,
      { source: 'http' as const, filter: { user_agent: pattern }, ...local },
    ]),
  );
}

describe('regex budget at load', () => {
  it('refuses five jails with the pathological pattern, each by jail, key path, pattern and cost', () => {
    // A cost is a timing, scaled down on a loaded machine: a hard limit at half the default keeps
    // the verdict certain (~1 ms/KiB idle, rarely under 300 µs on a busy CI machine).
    const previous = setRe2BudgetLimits({ softNsPerKiB: 50_000, hardNsPerKiB: 150_000 });
    let error: unknown;
    try {
      resolveConfig({ store: { memory: true }, jails: uaJails(Array(5).fill(PATHOLOGICAL)) }, { env: {} });
    } catch (caught) {
      error = caught;
    } finally {
      setRe2BudgetLimits(previous);
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(5);
    for (const [i, problem] of problems.entries()) {
      expect(problem).toMatch(
        new RegExp(
          `^<config>: jails\\.ua${i + 1}\\.filter\\.user_agent: regex "\\[ab\\]\\*a\\[ab\\]\\{60\\}K" is too slow to run on every request: \\d+ µs per KiB of input \\(limit 150 µs\\)`,
        ),
      );
    }
  });

  it('accepts a slow pattern with a warning naming the jail and the key path', () => {
    // A cost is a timing: limits far from the figure (~1 ms/KiB) make the verdict certain.
    const previous = setRe2BudgetLimits({ softNsPerKiB: 1_000, hardNsPerKiB: 1_000_000_000 });
    try {
      expectOneWarning();
    } finally {
      setRe2BudgetLimits(previous);
    }
  });
});

function expectOneWarning(): void {
  const config = parseConfigText(
    [
      'store: { memory: true }',
      'jails:',
      '  slow-ua:',
      '    source: http',
      `    filter: { status: 404, user_agent: '${PATHOLOGICAL}' }`,
      '  fine:',
      '    source: http',
      '    filter: { status: 404 }',
    ].join('\n'),
    'portcullis.yaml',
    { env: {} },
  );
  expect(config.warnings).toHaveLength(1);
  expect(config.warnings[0]).toMatch(
    /^portcullis\.yaml: jails\.slow-ua\.filter\.user_agent: regex "\[ab\]\*a\[ab\]\{60\}K" is slow: \d+ µs per KiB/,
  );
}

describe('regex budget under attack, through Express', () => {
  let guard: Guard | undefined;
  let server: Listening | undefined;

  afterAll(async () => {
    await server?.close();
    await guard?.close();
  });

  it("keeps a second client's latency bounded while an attacker sends 15 KB user agents", async () => {
    guard = await createGuard(
      { store: { memory: true }, jails: uaJails(SLOW) },
      { clock: createManualClock(), store: new MemoryStore(), env: {} },
    );
    expect(guard.config.jails).toHaveLength(5); // accepted: under the hard limit
    const app = express();
    app.use(portcullis(guard));
    app.use((_req, res) => {
      res.status(200).send('ok');
    });
    const listening = await listen(createServer(app));
    server = listening;
    // a/b only and no K, L or M: never a match, so every jail's regex scans all it is given.
    const attackUa = abText(15_000);
    let attacking = true;
    let attacks = 0;
    const attacker = async () => {
      while (attacking) {
        const reply = await send(listening.port, { headers: { 'user-agent': attackUa }, from: '127.0.0.66' });
        expect(reply.status).toBe(200);
        attacks++;
      }
    };
    const attackers = [attacker(), attacker(), attacker(), attacker()];
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) {
      const started = performance.now();
      const reply = await send(listening.port, { path: `/page/${i}`, from: '127.0.0.77' });
      latencies.push(performance.now() - started);
      expect(reply.status).toBe(200);
    }
    attacking = false;
    await Promise.all(attackers);
    await listening.settled(guard);
    expect(attacks).toBeGreaterThan(20);
    expect(Math.max(...latencies)).toBeLessThan(200);
  });
});
