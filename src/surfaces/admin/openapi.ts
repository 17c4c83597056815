/**
 * The OpenAPI 3.1 description of the admin listener, written by hand (the API is small and its
 * words matter more than a generator's). `/v1/openapi.json` serves it; a test checks that every
 * path the server answers is in it and every path in it is answered.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ref('Error') } },
});
const jsonResponse = (description: string, schema: object) => ({
  description,
  content: { 'application/json': { schema } },
});
const AUTH_ERRORS = {
  '401': errorResponse('No token (`unauthorized`) or a wrong one (`bad_token`, counted against the client).'),
  '429': errorResponse(
    'Too many wrong tokens from this client, or sent through the trusted proxy it came through (`too_many_auth_failures`): refused, the right token included, for `admin.auth_failures.bantime`. `Retry-After` says how long.',
  ),
  '421': errorResponse(
    'The Host header names something other than this listener (`misdirected_request`): localhost, 127.0.0.1 or [::1] (or the listen address) with its port, unless `admin.allow_remote`.',
  ),
};

const decision = {
  type: 'object',
  required: ['target', 'jail', 'reason', 'startedAt', 'expiresAt', 'banCount', 'dryRun', 'origin'],
  properties: {
    target: { type: 'string', description: 'Canonical address (`192.0.2.7`) or network (`2001:db8::/64`).' },
    jail: { type: 'string', description: 'The jail that decided, or `manual`.' },
    reason: { type: 'string' },
    startedAt: { type: 'integer', description: 'ms since the epoch' },
    expiresAt: { type: ['integer', 'null'], description: 'ms since the epoch; `null`: permanent' },
    banCount: { type: 'integer', minimum: 1 },
    dryRun: { type: 'boolean' },
    origin: { type: 'string', description: 'The instance that decided.' },
  },
};

const jailStatus = {
  type: 'object',
  description: "fail2ban's four numbers and the jail's thresholds.",
  required: ['name', 'source', 'currentlyFailed', 'totalFailed', 'currentlyBanned', 'totalBanned'],
  properties: {
    name: { type: 'string' },
    source: { type: 'string', description: '`log`, `command`, `http`, `api`, `socket`, ...' },
    dryRun: { type: 'boolean' },
    currentlyFailed: { type: 'integer', description: 'Clients with failures inside findtime now.' },
    totalFailed: { type: 'integer', description: 'Failures counted since start.' },
    currentlyBanned: { type: 'integer', description: 'Bans of this jail in force.' },
    totalBanned: { type: 'integer', description: 'Bans of this jail since start.' },
    maxretry: { type: 'integer' },
    findtimeMs: { type: 'integer' },
    bantimeMs: { type: 'integer', description: '-1: permanent' },
  },
};

export interface OpenApiFeatures {
  metrics: boolean;
  dashboard: boolean;
}

/** The document, with `/metrics` and `/` only when they are served. */
export function openApiDocument(features: OpenApiFeatures = { metrics: true, dashboard: true }): object {
  const paths: Record<string, object> = {
    '/healthz': {
      get: {
        summary: 'Liveness: the process answers.',
        security: [],
        tags: ['health'],
        responses: {
          '200': jsonResponse('Alive.', { type: 'object', properties: { status: { const: 'ok' } } }),
        },
      },
    },
    '/readyz': {
      get: {
        summary: 'Readiness: the store is reachable and the sources are running.',
        security: [],
        tags: ['health'],
        responses: {
          '200': jsonResponse('Ready.', ref('Readiness')),
          '503': jsonResponse('Not ready (store unreachable, or stopping).', ref('Readiness')),
        },
      },
    },
    '/v1/status': {
      get: {
        summary: 'The whole daemon: jails with their four numbers, store, sources, actions.',
        tags: ['status'],
        responses: { '200': jsonResponse('Status.', ref('Status')), ...AUTH_ERRORS },
      },
    },
    '/v1/jails/{name}': {
      get: {
        summary: 'One jail: its numbers, what it watches and its bans.',
        tags: ['status'],
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': jsonResponse('The jail.', ref('JailReport')),
          '404': errorResponse('No such jail (`unknown_jail`).'),
          ...AUTH_ERRORS,
        },
      },
    },
    '/v1/decisions': {
      get: {
        summary: 'Bans in force, newest first.',
        tags: ['decisions'],
        parameters: [
          { name: 'jail', in: 'query', schema: { type: 'string' }, description: "Only this jail's bans." },
          {
            name: 'ip',
            in: 'query',
            schema: { type: 'string' },
            description: 'Only bans covering this address (an address or network ban).',
          },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
          },
        ],
        responses: {
          '200': jsonResponse('The list.', {
            type: 'object',
            required: ['count', 'decisions'],
            properties: { count: { type: 'integer' }, decisions: { type: 'array', items: ref('Decision') } },
          }),
          '400': errorResponse('A bad `ip` (`bad_target`) or `limit` (`bad_request`).'),
          ...AUTH_ERRORS,
        },
      },
      post: {
        summary: 'Bans an address or network by hand (or for a jail).',
        tags: ['decisions'],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: ref('BanRequest') } },
        },
        responses: {
          '201': jsonResponse('The decision as stored.', ref('Decision')),
          '400': errorResponse(
            'Bad JSON (`bad_json`), target (`bad_target`), jail (`unknown_jail`) or field.',
          ),
          '413': errorResponse('The body is larger than 16 KiB (`payload_too_large`).'),
          '415': errorResponse('A Content-Type other than JSON.'),
          ...AUTH_ERRORS,
        },
      },
      delete: {
        summary: "Lifts the ban of `?target=` (with `?jail=`: only that jail's).",
        tags: ['decisions'],
        parameters: [
          { name: 'target', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'jail', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': jsonResponse('Lifted.', ref('Unbanned')),
          '400': errorResponse('No or a bad target (`bad_target`).'),
          '404': errorResponse('Not banned (`not_banned`).'),
          ...AUTH_ERRORS,
        },
      },
    },
    '/v1/decisions/{target}': {
      delete: {
        summary: 'Lifts the ban of `target` (a network percent-encoded: `10.0.0.0%2F8`).',
        tags: ['decisions'],
        parameters: [
          { name: 'target', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'jail', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': jsonResponse('Lifted.', ref('Unbanned')),
          '400': errorResponse('A bad target (`bad_target`).'),
          '404': errorResponse('Not banned (`not_banned`).'),
          ...AUTH_ERRORS,
        },
      },
    },
    '/v1/events': {
      get: {
        summary:
          'Server-Sent Events: `failure`, `ban` and `unban`, each `data:` one JSON object; a comment line as heartbeat. A client that does not read (1 MiB unread, or bytes left undrained for 60 s) is disconnected; a stream is ended after 1 hour, and when a reload replaces the token it was opened with (reconnect and reload `/v1/decisions`). HEAD is not allowed here (405): it would hold a stream slot.',
        tags: ['events'],
        parameters: [
          {
            name: 'types',
            in: 'query',
            schema: { type: 'string', example: 'ban,unban' },
            description: 'Comma-separated event types. Default all.',
          },
        ],
        responses: {
          '200': {
            description: 'The stream.',
            content: { 'text/event-stream': { schema: { type: 'string' }, itemSchema: ref('Event') } },
          },
          '400': errorResponse('An unknown event type.'),
          '503': errorResponse('Too many streams are open (`too_many_streams`).'),
          ...AUTH_ERRORS,
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        summary: 'This document.',
        tags: ['meta'],
        responses: { '200': jsonResponse('OpenAPI 3.1.', { type: 'object' }), ...AUTH_ERRORS },
      },
    },
  };
  if (features.metrics) {
    paths['/metrics'] = {
      get: {
        summary: 'Prometheus metrics (text exposition format 0.0.4). Labels never hold an address.',
        tags: ['meta'],
        responses: {
          '200': { description: 'Metrics.', content: { 'text/plain': { schema: { type: 'string' } } } },
          ...AUTH_ERRORS,
        },
      },
    };
  }
  if (features.dashboard) {
    paths['/'] = {
      get: {
        summary: 'The live dashboard (one HTML page; it asks for the token and calls this API).',
        security: [],
        tags: ['meta'],
        responses: {
          '200': { description: 'The page.', content: { 'text/html': { schema: { type: 'string' } } } },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'portcullis admin API',
      version: '1',
      description:
        'Status, decisions (ban, unban), the live event feed and metrics of a running portcullis. Every endpoint but /healthz, /readyz and the dashboard page needs `Authorization: Bearer <token>`; errors are `{"error": {"code", "message"}}`. The paths listed are the ones this listener serves: `/metrics` and the dashboard are chosen at start (`admin.metrics`, `admin.dashboard`) and a reload does not change them.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: 'http://127.0.0.1:9191', description: 'the default admin.listen' }],
    security: [{ bearer: [] }],
    tags: [
      { name: 'health' },
      { name: 'status' },
      { name: 'decisions' },
      { name: 'events' },
      { name: 'meta' },
    ],
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'The token of admin.token_file or admin.token_env.',
        },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: {
                  type: 'string',
                  enum: [
                    'unauthorized',
                    'bad_token',
                    'too_many_auth_failures',
                    'not_found',
                    'method_not_allowed',
                    'payload_too_large',
                    'unsupported_media_type',
                    'bad_json',
                    'bad_request',
                    'bad_target',
                    'unknown_jail',
                    'not_banned',
                    'too_many_streams',
                    'not_ready',
                    'internal',
                  ],
                },
                message: { type: 'string' },
              },
            },
          },
        },
        Decision: decision,
        JailStatus: jailStatus,
        JailReport: {
          allOf: [
            ref('JailStatus'),
            {
              type: 'object',
              properties: {
                watching: { type: 'array', items: { type: 'string' } },
                bans: { type: 'array', items: ref('Decision') },
              },
            },
          ],
        },
        Status: {
          type: 'object',
          required: ['version', 'pid', 'store', 'jails', 'activeBans'],
          properties: {
            version: { type: 'string' },
            pid: { type: 'integer' },
            instanceId: { type: 'string' },
            startedAt: { type: 'integer' },
            uptimeMs: { type: 'integer' },
            store: ref('StoreState'),
            jails: { type: 'array', items: ref('JailStatus') },
            sources: { type: 'object', additionalProperties: { type: 'object' } },
            actions: { type: 'object', additionalProperties: { type: 'object' } },
            activeBans: { type: 'integer' },
          },
        },
        StoreState: {
          type: 'object',
          properties: {
            kind: { type: 'string', enum: ['sqlite', 'redis', 'memory'] },
            available: { type: 'boolean' },
            pendingWrites: { type: 'integer' },
          },
        },
        Readiness: {
          type: 'object',
          required: ['ready'],
          properties: { ready: { type: 'boolean' }, store: ref('StoreState'), sources: { type: 'boolean' } },
        },
        BanRequest: {
          type: 'object',
          required: ['target'],
          additionalProperties: false,
          properties: {
            target: { type: 'string', examples: ['192.0.2.7', '2001:db8::/64'] },
            jail: { type: 'string', description: 'Default `manual`.' },
            bantime: {
              type: ['string', 'number'],
              description:
                'A duration ("1h"), seconds, or -1 (permanent). Default the jail\'s bantime (1h for manual).',
            },
            reason: { type: 'string', maxLength: 200 },
          },
        },
        Unbanned: {
          type: 'object',
          properties: { target: { type: 'string' }, unbanned: { type: 'integer', minimum: 1 } },
        },
        Event: {
          oneOf: [
            {
              type: 'object',
              properties: {
                type: { const: 'failure' },
                time: { type: 'integer' },
                jail: { type: 'string' },
                ip: { type: 'string' },
                failures: { type: 'integer' },
                maxretry: { type: 'integer' },
              },
            },
            {
              type: 'object',
              properties: {
                type: { const: 'ban' },
                time: { type: 'integer' },
                decision: ref('Decision'),
                origin: { type: 'string' },
              },
            },
            {
              type: 'object',
              properties: {
                type: { const: 'unban' },
                time: { type: 'integer' },
                target: { type: 'string' },
                jail: { type: 'string' },
                reason: { type: 'string' },
              },
            },
          ],
        },
      },
    },
  };
}
