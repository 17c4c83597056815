import { randomBytes } from 'node:crypto';
import { resolveConfig } from '../../src/config/load.js';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { createControl, type OperatedControl } from '../../src/operate/create-control.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { type RunningAdmin, type StartAdminOptions, startAdmin } from '../../src/surfaces/admin/index.js';
import { createProxy, type PortcullisProxy } from '../../src/surfaces/proxy/index.js';
import { type Reply, type SendOptions, send } from './http-client.js';
import { startUpstream, type Upstream } from './proxy.js';

/**
 * A real guard (memory store) with the real control, an admin listener on a free loopback port,
 * and optionally a reverse proxy in front of a small upstream: what `portcullis run` wires, in
 * the test's process.
 */
export interface AdminFixture {
  guard: Guard;
  control: OperatedControl;
  admin: RunningAdmin;
  proxy: PortcullisProxy | undefined;
  upstream: Upstream | undefined;
  token: string;
  port: number;
  /** A request to the admin listener; `token: null` sends none. Default the right token. */
  call(path: string, options?: SendOptions & { token?: string | null; json?: unknown }): Promise<Reply>;
  close(): Promise<void>;
}

export interface AdminFixtureOptions {
  /** Jails and settings; `store: { memory: true }` and `admin:` are added. */
  config?: PortcullisOptions;
  /** Extra `admin:` keys. */
  admin?: Record<string, unknown>;
  withProxy?: boolean;
  server?: StartAdminOptions['server'];
  /** More source stats for `status()` (a log source's). */
  sources?: () => Record<string, object>;
}

export async function startAdminFixture(options: AdminFixtureOptions = {}): Promise<AdminFixture> {
  const token = randomBytes(24).toString('hex');
  const config = resolveConfig(
    {
      ...(options.config ?? {}),
      store: { memory: true },
      admin: {
        listen: '127.0.0.1:0',
        token_env: 'PC_ADMIN_TEST_TOKEN',
        process_metrics: false,
        ...options.admin,
      },
    },
    { env: { PC_ADMIN_TEST_TOKEN: token } },
  );
  const guard = await createGuard(config, { store: new MemoryStore(), env: {} });
  let upstream: Upstream | undefined;
  let proxy: PortcullisProxy | undefined;
  if (options.withProxy) {
    upstream = await startUpstream('app');
    proxy = await createProxy(guard, { listen: '127.0.0.1:0', target: upstream.url, deny: 403 });
  }
  const control = createControl({
    guard,
    sourceStats: (): Record<string, object> => ({
      ...(proxy === undefined ? {} : { proxy: { ...proxy.stats, pipeline: { ...proxy.pipeline.stats } } }),
      ...(options.sources?.() ?? {}),
    }),
    actionStats: () => ({}),
    reload: async () => ({ ok: true }),
    stop: async () => {},
  });
  const admin = await startAdmin({
    control,
    config: () => guard.config.admin as NonNullable<typeof guard.config.admin>,
    guard,
    ...(proxy === undefined ? {} : { proxy }),
    ...(options.server === undefined ? {} : { server: options.server }),
  });
  const port = admin.server.address.port;
  return {
    guard,
    control,
    admin,
    proxy,
    upstream,
    token,
    port,
    call(path, { token: given = token, json, ...rest } = {}) {
      const headers: Record<string, string> = { ...((rest.headers as Record<string, string>) ?? {}) };
      if (given !== null) headers.authorization = `Bearer ${given}`;
      if (json !== undefined) headers['content-type'] = 'application/json';
      return send(port, {
        ...rest,
        path,
        headers,
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
    },
    async close() {
      await admin.close();
      await proxy?.close();
      await upstream?.close();
      control.close();
      await guard.close();
    },
  };
}
