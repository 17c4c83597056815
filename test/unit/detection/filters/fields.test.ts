import { describe, expect, it } from 'vitest';
import {
  compileFieldFilter,
  defineFieldCatalogue,
  type FieldCatalogue,
  type FieldFilterSpec,
  PACKET_FIELDS,
  SOCKET_FIELDS,
  type SocketFilterEvent,
  validateFieldFilter,
} from '../../../../src/detection/filters/fields/index.js';
import { compileHttpFilter } from '../../../../src/detection/filters/http/compile.js';
import { HTTP_FIELDS } from '../../../../src/detection/filters/http/http-fields.js';

/** A close event of a 5 s connection that sent and received a little. */
function closed(fields: Partial<SocketFilterEvent> = {}): SocketFilterEvent {
  return {
    event: 'close',
    listener: 'ssh',
    dport: 22,
    durationMs: 5_000,
    bytesIn: 1_200,
    bytesOut: 3_400,
    noData: false,
    concurrent: 1,
    end: 'client-close',
    ...fields,
  };
}

const opened = (fields: Partial<SocketFilterEvent> = {}): SocketFilterEvent => ({
  event: 'open',
  listener: 'ssh',
  dport: 22,
  concurrent: 1,
  ...fields,
});

/** Validates like the config layer, then compiles: a bad filter fails the test with its problems. */
function socketFilter(input: unknown): (event: SocketFilterEvent) => boolean {
  const result = validateFieldFilter(SOCKET_FIELDS, input);
  if (result.spec === null) throw new Error(JSON.stringify(result.problems));
  return compileFieldFilter(SOCKET_FIELDS, result.spec).matches;
}

/** The problems of a filter the schema must refuse, as `path: message` lines. */
function problems(input: unknown, catalogue: FieldCatalogue<never> = SOCKET_FIELDS): string[] {
  const result = validateFieldFilter(catalogue, input);
  if (result.spec !== null) throw new Error('expected the filter to be refused');
  return result.problems.map(({ path, message }) => `${path.join('.')}: ${message}`);
}

describe('socket filters', () => {
  it('exact values: a keyword and a number', () => {
    const silent = socketFilter({ event: 'close', bytes_in: 0 });
    expect(silent(closed({ bytesIn: 0 }))).toBe(true);
    expect(silent(closed({ bytesIn: 1 }))).toBe(false);
    expect(silent(opened())).toBe(false); // an open has no bytes_in, and is not a close
  });

  it('lists are any of; ranges and comparisons bound numbers', () => {
    const ports = socketFilter({ dport: [22, 2222, '8000-8099'] });
    expect(ports(closed({ dport: 2222 }))).toBe(true);
    expect(ports(closed({ dport: 8050 }))).toBe(true);
    expect(ports(closed({ dport: 8100 }))).toBe(false);
    expect(ports(closed({ dport: 23 }))).toBe(false);
    const crowd = socketFilter({ event: 'open', concurrent: { gt: 20 } });
    expect(crowd(opened({ concurrent: 21 }))).toBe(true);
    expect(crowd(opened({ concurrent: 20 }))).toBe(false);
    const small = socketFilter({ bytes_out: { gte: 1, lt: 500 } });
    expect(small(closed({ bytesOut: 1 }))).toBe(true);
    expect(small(closed({ bytesOut: 499 }))).toBe(true);
    expect(small(closed({ bytesOut: 500 }))).toBe(false);
    expect(small(closed({ bytesOut: 0 }))).toBe(false);
  });

  it('durations compare in ms against a value written with a unit', () => {
    const quick = socketFilter({ event: 'close', duration: { lt: '2s' } });
    expect(quick(closed({ durationMs: 1_999 }))).toBe(true);
    expect(quick(closed({ durationMs: 2_000 }))).toBe(false);
    expect(quick(opened())).toBe(false);
    const band = socketFilter({ duration: { gte: '500ms', lte: '1m30s' } });
    expect(band(closed({ durationMs: 500 }))).toBe(true);
    expect(band(closed({ durationMs: 90_000 }))).toBe(true);
    expect(band(closed({ durationMs: 90_001 }))).toBe(false);
  });

  it('any, all and not combine; an absent field matches under not', () => {
    const probe = socketFilter({
      event: 'close',
      any: [{ no_data: true }, { end: ['reset', 'timeout'] }, { duration: { lt: '100ms' } }],
    });
    expect(probe(closed({ noData: true }))).toBe(true);
    expect(probe(closed({ end: 'timeout' }))).toBe(true);
    expect(probe(closed({ durationMs: 20 }))).toBe(true);
    expect(probe(closed())).toBe(false);
    const notClient = socketFilter({ not: { end: 'client-close' } });
    expect(notClient(closed({ end: 'upstream-close' }))).toBe(true);
    expect(notClient(closed({ end: 'client-close' }))).toBe(false);
    expect(notClient(opened())).toBe(true); // no `end` yet: not a client end
    const both = socketFilter({ all: [{ listener: 'ssh' }, { dport: 22 }] });
    expect(both(closed())).toBe(true);
    expect(both(closed({ listener: 'smtp' }))).toBe(false);
    expect(socketFilter({})(closed())).toBe(true);
  });

  it('keywords are compared exactly; { match } is a regex; text fields are regexes, absent reads ""', () => {
    const web = socketFilter({ listener: { match: '^web-' } });
    expect(web(closed({ listener: 'web-1' }))).toBe(true);
    expect(web(closed({ listener: 'ssh' }))).toBe(false);
    expect(socketFilter({ listener: 'SSH' })(closed({ listener: 'ssh' }))).toBe(false);
    const sni = socketFilter({ sni: '(?i)\\.example\\.com$' });
    expect(sni(closed({ sni: 'MAIL.example.com' }))).toBe(true);
    expect(sni(closed())).toBe(false);
    expect(socketFilter({ sni: '^$' })(closed())).toBe(true); // no SNI at all
  });

  it('reads only the fields the filter names', () => {
    const read: string[] = [];
    const lazy = new Proxy(closed({ bytesIn: 0 }), {
      get(target, key) {
        read.push(String(key));
        return target[key as keyof SocketFilterEvent];
      },
    });
    expect(socketFilter({ event: 'close', bytes_in: 0 })(lazy)).toBe(true);
    expect(read.sort()).toEqual(['bytesIn', 'event']);
  });

  it('distinct: the value of the field, as text', () => {
    const result = validateFieldFilter(SOCKET_FIELDS, { event: 'close', distinct: 'dport' });
    if (result.spec === null) throw new Error('valid');
    const filter = compileFieldFilter(SOCKET_FIELDS, result.spec);
    expect(filter.distinct).toBe('dport');
    expect(filter.distinctValue(closed({ dport: 2222 }))).toBe('2222');
  });
});

describe('field filter configuration errors', () => {
  it('an unknown field names the fields the source has', () => {
    expect(problems({ event: 'close', status: 404 })).toEqual([
      'status: unknown field "status" (socket filters know: event, ip, listener, dport, duration, bytes_in, bytes_out, no_data, concurrent, end, sni, all, any, not, distinct)',
    ]);
    expect(problems({ any: [{ bytes: 0 }] })[0]).toMatch(
      /^any\.0\.bytes: unknown field "bytes" \(socket filters know: event, /,
    );
    expect(problems({ event: 'syn', path: '^/' }, PACKET_FIELDS)[0]).toMatch(
      /^path: unknown field "path" \(packets filters know: event, dport, proto, ports, /,
    );
  });

  it('bad values name the key path, what was expected and what was got', () => {
    expect(problems({ event: 'closed' })).toEqual(['event: expected one of "open", "close", got "closed"']);
    expect(problems({ end: ['client-close', 'Reset'] })).toEqual([
      'end.1: expected one of "client-close", "upstream-close", "reset", "timeout", "upstream-error", "refused", got "Reset"',
    ]);
    expect(problems({ dport: 70_000 })).toEqual([
      'dport: expected a port like 22, a list like [80, 443], a range like "8000-8999" or { gte: 1024 }, got 70000',
    ]);
    expect(problems({ bytes_in: { gte: 'lots' } })).toEqual(['bytes_in.gte: expected a number, got "lots"']);
    expect(problems({ bytes_in: { above: 3 } })[0]).toMatch(
      /^bytes_in\.above: expected a count like 0, .*got "above"$/,
    );
    expect(problems({ duration: { lt: 2 } })).toEqual([
      'duration.lt: expected a duration with a unit like "500ms", "2s" or "1m30s", got 2',
    ]);
    expect(problems({ duration: '2s' })).toEqual([
      'duration: expected a comparison of durations like { lt: "2s" } or { gte: "1m", lt: "1h" }, got "2s"',
    ]);
    expect(problems({ duration: { gt: '1s', gte: '2s' } })).toEqual([
      'duration: expected one of gt and gte, not both, got {"gt":"1s","gte":"2s"}',
    ]);
    expect(problems({ no_data: 'yes' })).toEqual(['no_data: expected true or false, got "yes"']);
    expect(problems({ not: { sni: '(?=x)' } })).toEqual([
      'not.sni: expected a regex RE2 can compile (no lookaround, no backreferences), got "(?=x)": invalid perl operator: (?=',
    ]);
    expect(problems({ listener: { match: 5 } })).toEqual(['listener.match: expected a regex (text), got 5']);
    expect(problems({ dport: [] })[0]).toMatch(
      /^dport: expected at least one value \(a port like 22, .*\), got \[\]$/,
    );
  });

  it('structure: lists of filters, one not, distinct at the top only', () => {
    expect(problems({ any: [] })).toEqual(['any: expected a non-empty list, got a list []']);
    expect(problems({ all: 'x' })).toEqual(['all: expected a list, got "x"']);
    expect(problems({ not: ['x'] })).toEqual(['not: expected a mapping, got a list ["x"]']);
    expect(problems({ any: [{ event: 'close', distinct: 'dport' }] })).toEqual([
      'any.0.distinct: distinct is allowed only at the top level of a filter',
    ]);
    expect(problems({ distinct: 'bogus' })[0]).toMatch(
      /^distinct: expected one of "event", "ip", "listener", /,
    );
  });
});

describe('field catalogues', () => {
  it('are parameters: a catalogue of its own fields, kinds and getters', () => {
    const catalogue = defineFieldCatalogue<{ user: string; tries: number }>('test', {
      user: { type: 'keyword', fold: 'lower', description: 'user', get: (e) => e.user },
      tries: { type: 'number', integer: true, min: 0, description: 'tries', get: (e) => e.tries },
    });
    const result = validateFieldFilter(catalogue, { user: ['Root', 'admin'], tries: { gte: 3 } });
    if (result.spec === null) throw new Error(JSON.stringify(result.problems));
    const { matches } = compileFieldFilter(catalogue, result.spec);
    expect(matches({ user: 'root', tries: 3 })).toBe(true);
    expect(matches({ user: 'root', tries: 2 })).toBe(false);
    expect(matches({ user: 'bob', tries: 9 })).toBe(false);
    expect(() =>
      defineFieldCatalogue('bad', { not: { type: 'text', description: '', get: () => '' } }),
    ).toThrow(/"not" is a filter keyword/);
  });

  it('HTTP is one of them: the HTTP compiler and the generic one agree', () => {
    const spec = { status: '4xx', method: 'post', path: '^/login' };
    const event = {
      ip: '192.0.2.1',
      timeMs: 0,
      method: 'POST',
      host: '',
      path: '/login',
      url: '/login',
      query: '',
      status: 401,
      userAgent: '',
      referer: '',
      bytesSent: 0,
      durationMs: 1,
      aborted: false,
      headers: {},
    };
    expect(compileFieldFilter(HTTP_FIELDS, spec as FieldFilterSpec).matches(event)).toBe(true);
    expect(compileHttpFilter(spec).matches(event)).toBe(true);
    expect(compileHttpFilter(spec).matches({ ...event, status: 200 })).toBe(false);
  });
});
