import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LogJails, startLogJails } from '../../src/sources/log/log-jail.js';
import { type AdminFixture, startAdminFixture } from '../helpers/admin.js';
import { send } from '../helpers/http-client.js';
import { waitFor } from '../helpers/wait-for.js';

let fixture: AdminFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\["\\\\n])*"`;
const SAMPLE = new RegExp(
  `^(${NAME})(\\{${LABEL}(?:,${LABEL})*\\})? (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?)|NaN|\\+Inf|-Inf)$`,
);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format strictly: every line is a comment, a sample, or empty. */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(type);
      types.set(name as string, type as string);
      continue;
    }
    const match = SAMPLE.exec(line);
    expect(match, `not a Prometheus sample line: ${JSON.stringify(line)}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const m of (match?.[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[m[1] as string] = m[2] as string;
    samples.push({ name: match?.[1] as string, labels, value: Number(match?.[3]) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

describe('admin /metrics', () => {
  it('is Prometheus text whose counters follow the traffic sent through the proxy', async () => {
    fixture = await startAdminFixture({
      withProxy: true,
      config: {
        defaults: { ignoreip: [], ignoreself: false },
        jails: { 'web-auth': { source: 'http', filter: { status: [401] }, maxretry: 3, bantime: '1h' } },
      },
    });
    const f = fixture;
    const proxyPort = f.proxy?.addresses[0]?.port as number;
    const scrape = async () => {
      const reply = await f.call('/metrics');
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      return { text: reply.body, ...parsePrometheus(reply.body) };
    };

    const before = await scrape();
    expect(before.types.get('portcullis_failures_total')).toBe('counter');
    expect(before.types.get('portcullis_active_bans')).toBe('gauge');
    expect(before.types.get('portcullis_http_added_latency_seconds')).toBe('histogram');
    expect(value(before.samples, 'portcullis_failures_total', { jail: 'web-auth' })).toBe(0);
    expect(value(before.samples, 'portcullis_http_requests_total', { outcome: 'allowed' })).toBe(0);
    expect(value(before.samples, 'portcullis_store_up', { kind: 'memory' })).toBe(1);

    const client = '127.0.0.2';
    for (let i = 0; i < 2; i++) expect((await send(proxyPort, { path: '/', from: client })).status).toBe(200);
    for (let i = 0; i < 3; i++)
      expect((await send(proxyPort, { path: '/status/401', from: client })).status).toBe(401);
    await f.guard.idle();
    expect(f.guard.isBanned(client)).toBe(true);
    expect((await send(proxyPort, { path: '/', from: client })).status).toBe(403);
    // Another client is still served.
    expect((await send(proxyPort, { path: '/', from: '127.0.0.3' })).status).toBe(200);

    const after = await scrape();
    expect(value(after.samples, 'portcullis_failures_total', { jail: 'web-auth' })).toBe(3);
    expect(value(after.samples, 'portcullis_bans_total', { jail: 'web-auth' })).toBe(1);
    expect(value(after.samples, 'portcullis_active_bans', { jail: 'web-auth' })).toBe(1);
    expect(value(after.samples, 'portcullis_http_requests_total', { outcome: 'allowed' })).toBe(6);
    expect(value(after.samples, 'portcullis_http_requests_total', { outcome: 'denied' })).toBe(1);
    expect(value(after.samples, 'portcullis_http_requests_total', { outcome: 'rate_limited' })).toBe(0);
    expect(value(after.samples, 'portcullis_http_added_latency_seconds_count')).toBe(6);
    expect(value(after.samples, 'portcullis_http_added_latency_seconds_bucket', { le: '+Inf' })).toBe(6);
    expect(value(after.samples, 'portcullis_http_added_latency_seconds_sum')).toBeGreaterThan(0);
    // Buckets are cumulative.
    const buckets = after.samples.filter((s) => s.name === 'portcullis_http_added_latency_seconds_bucket');
    for (let i = 1; i < buckets.length; i++)
      expect(buckets[i]?.value).toBeGreaterThanOrEqual(buckets[i - 1]?.value as number);

    // Unban through the API: the unban counter moves, the gauge falls.
    expect((await f.call(`/v1/decisions/${client}`, { method: 'DELETE' })).status).toBe(200);
    const lifted = await scrape();
    expect(value(lifted.samples, 'portcullis_unbans_total', { jail: 'web-auth' })).toBe(1);
    expect(value(lifted.samples, 'portcullis_active_bans', { jail: 'web-auth' })).toBe(0);
    // A client address never becomes a label.
    expect(lifted.text).not.toContain('127.0.0.2');
    expect(lifted.text).not.toContain('127.0.0.3');
  });

  it('counts log lines read, matched and missed per jail, and lines and lag per file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-admin-log-'));
    const file = join(dir, 'auth.log');
    writeFileSync(file, '');
    let logJails: LogJails | undefined;
    try {
      fixture = await startAdminFixture({
        config: {
          defaults: { ignoreip: [], ignoreself: false },
          jails: { sshd: { source: { log: file }, filter: 'sshd', maxretry: 50 } },
        },
        sources: (): Record<string, object> => (logJails === undefined ? {} : { log: logJails.stats() }),
      });
      logJails = await startLogJails(fixture.guard, {
        makeFilter: () => ({
          processLine: (line: string) => {
            const ip = /^fail (\S+)$/.exec(line)?.[1];
            return { matches: ip === undefined ? [] : [{ ip, timeMs: Date.now(), fields: {} }] };
          },
        }),
        pollIntervalMs: 20,
      });
      appendFileSync(file, 'fail 192.0.2.1\nhello\nfail 192.0.2.2\nnothing here\nfail 192.0.2.1\n');
      await waitFor(() => (logJails?.stats().sshd?.reports ?? 0) >= 3);
      const text = (await fixture.call('/metrics')).body;
      const { samples } = parsePrometheus(text);
      expect(value(samples, 'portcullis_log_lines_read_total', { jail: 'sshd' })).toBe(5);
      expect(value(samples, 'portcullis_log_lines_matched_total', { jail: 'sshd' })).toBe(3);
      expect(value(samples, 'portcullis_log_lines_missed_total', { jail: 'sshd' })).toBe(2);
      expect(value(samples, 'portcullis_log_file_lines_total', { jail: 'sshd', file })).toBe(5);
      expect(value(samples, 'portcullis_log_follow_lag_bytes', { jail: 'sshd', file })).toBe(0);
      expect(value(samples, 'portcullis_failures_total', { jail: 'sshd' })).toBe(3);
      expect(text).not.toContain('192.0.2.');
    } finally {
      await logJails?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts wrong admin tokens and open event streams', async () => {
    fixture = await startAdminFixture();
    const f = fixture;
    for (let i = 0; i < 3; i++) await f.call('/v1/status', { token: 'x'.repeat(32) });
    const { samples } = parsePrometheus((await f.call('/metrics')).body);
    expect(value(samples, 'portcullis_admin_auth_failures_total')).toBe(3);
    expect(value(samples, 'portcullis_admin_event_streams')).toBe(0);
  });

  it('has every metric the shipped Grafana dashboard queries', async () => {
    fixture = await startAdminFixture();
    const { types } = parsePrometheus((await fixture.call('/metrics')).body);
    const dashboard = readFileSync(new URL('../../examples/grafana-dashboard.json', import.meta.url), 'utf8');
    const queried = new Set([...dashboard.matchAll(/\b(portcullis_[a-z_]+)/g)].map((m) => m[1] as string));
    expect(queried.size).toBeGreaterThan(15);
    for (const name of queried) expect(types.has(name.replace(/_bucket$/, '')), name).toBe(true);
  });

  it('labels unbans without walking every failing client, and follows jails added by a reload', async () => {
    fixture = await startAdminFixture({
      config: {
        defaults: { ignoreip: [], ignoreself: false },
        jails: { a: { source: 'http', filter: { status: [401] }, maxretry: 1000, bantime: '1h' } },
      },
    });
    const f = fixture;
    // Failing clients make status() expensive; an unban must not call it at all.
    for (let i = 0; i < 500; i++) await f.guard.report(`10.9.${i >> 8}.${i & 255}`, { jail: 'a' });
    const status = f.control.status.bind(f.control);
    let statusCalls = 0;
    f.control.status = () => {
      statusCalls++;
      return status();
    };
    for (let i = 0; i < 200; i++) await f.control.ban(`192.0.2.${i}`, { jail: 'a', bantimeMs: 3_600_000 });
    expect(await f.control.unbanAll()).toBe(200);
    expect(statusCalls).toBe(0);
    let scraped = parsePrometheus((await f.call('/metrics')).body).samples;
    expect(statusCalls).toBe(1);
    expect(value(scraped, 'portcullis_unbans_total', { jail: 'a' })).toBe(200);

    // A jail added by a reload (never scraped yet) gets its own label, not "other".
    const [a] = f.guard.config.jails;
    f.guard.reload({
      ...f.guard.config,
      jails: [...f.guard.config.jails, { ...(a as NonNullable<typeof a>), name: 'b' }],
    });
    await f.control.ban('192.0.2.250', { jail: 'b', bantimeMs: 3_600_000 });
    await f.control.unban('192.0.2.250');
    scraped = parsePrometheus((await f.call('/metrics')).body).samples;
    expect(value(scraped, 'portcullis_unbans_total', { jail: 'b' })).toBe(1);
    expect(value(scraped, 'portcullis_unbans_total', { jail: 'other' })).toBeUndefined();
  });

  it('is absent with metrics: false', async () => {
    fixture = await startAdminFixture({ admin: { metrics: false } });
    expect((await fixture.call('/metrics')).status).toBe(404);
    const doc = JSON.parse((await fixture.call('/v1/openapi.json')).body) as { paths: object };
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
  });
});
