// npm run bench:control — what the operator's side costs report(): the jail counters and the
// activity log lines (createControl + attachActivityLog, as `portcullis run` wires them) against
// a bare guard, side by side, memory store, counting only and banning.
import { Writable } from 'node:stream';
import pino from 'pino';
import { formatIPv4 } from '../src/core/ip.js';
import { createGuard, type Guard } from '../src/guard.js';
import { attachActivityLog } from '../src/operate/activity-log.js';
import { createControl } from '../src/operate/create-control.js';
import { MemoryStore } from '../src/stores/memory/memory-store.js';
import { fmt, machineLine, median } from './machine.js';

const REPORTS = Number(process.env.REPORTS ?? 200_000);
const ROUNDS = 5;

async function round(withControl: boolean, maxretry: number, clients: number): Promise<number> {
  // An info logger writing to nowhere: the lines are formatted (throttled) as in a daemon.
  const logger = pino({ level: 'info' }, new Writable({ write: (_c, _e, done) => done() }));
  const guard: Guard = await createGuard(
    {
      store: { memory: true },
      jails: { bench: { maxretry, findtime: '1h', ignoreip: [], ignoreself: false } },
    },
    { env: {}, store: new MemoryStore(), logger },
  );
  const control = withControl
    ? createControl({
        guard,
        sourceStats: () => ({}),
        actionStats: () => ({}),
        reload: async () => ({ ok: true }),
        stop: async () => {},
      })
    : undefined;
  const detach = withControl ? attachActivityLog(guard, logger) : () => {};
  const start = performance.now();
  for (let i = 0; i < REPORTS; i++)
    await guard.report(formatIPv4(0xc6120000 + (i % clients)), { jail: 'bench' });
  const rate = REPORTS / ((performance.now() - start) / 1000);
  detach();
  control?.close();
  await guard.close();
  return rate;
}

console.log(machineLine());
for (const [mode, maxretry, clients] of [
  ['counting only', 1_000_000, 50_000],
  ['banning (maxretry 5)', 5, REPORTS / 5],
] as const) {
  const bare: number[] = [];
  const operated: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternated, so drift on a shared machine hits both alike.
    bare.push(await round(false, maxretry, clients));
    operated.push(await round(true, maxretry, clients));
  }
  const b = median(bare);
  const o = median(operated);
  console.log(
    `${mode}: bare guard ${fmt(b)} reports/s, with counters + activity log ${fmt(o)} reports/s (ratio ${(o / b).toFixed(2)}; medians of ${ROUNDS})`,
  );
}
