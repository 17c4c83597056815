import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ExchangeEvent, httpEventOf } from '../../../../src/sources/http/http-event.js';

function exchange(): { req: IncomingMessage; res: ServerResponse } {
  const req = new IncomingMessage(new Socket());
  req.method = 'post';
  req.headers = { host: 'Example.COM:8080', 'user-agent': 'curl/8.5.0', referer: 'http://r.example/' };
  const res = new ServerResponse(req);
  res.statusCode = 401;
  res.setHeader('content-length', '12');
  return { req, res };
}

describe('ExchangeEvent', () => {
  it('reads, field for field, as httpEventOf builds the same exchange', () => {
    const { req, res } = exchange();
    const url = '/%2eenv/x?next=%2F';
    const clock = { now: () => 1_700_000_000_000 };
    const lazy = new ExchangeEvent(req, res, '192.0.2.7', url, performance.now(), clock);
    const eager = httpEventOf(req, res, '192.0.2.7', url, performance.now(), clock.now());
    for (const key of Object.keys(eager) as (keyof typeof eager)[]) {
      if (key === 'durationMs') continue; // measured at first read
      expect([key, lazy[key]]).toEqual([key, eager[key]]);
    }
    expect(lazy.durationMs).toBeGreaterThanOrEqual(0);
  });
});
