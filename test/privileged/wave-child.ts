// Run inside the server namespace: a guard (memory store), an ActionRunner and the nftables action
// whose nft calls are counted; bans a wave of N addresses and prints the calls made.

import { nftExec } from '../../src/actions/nftables/nft.js';
import { createNftablesAction } from '../../src/actions/nftables/nftables-action.js';
import { nftablesOptionsSchema, resolveNftablesOptions } from '../../src/actions/nftables/options.js';
import { ActionRunner } from '../../src/actions/runner.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { createGuard } from '../../src/guard.js';

const count = Number(process.argv[2] ?? 10_000);
const real = nftExec();
let calls = 0;
const exec = (args: readonly string[], input?: string) => {
  calls++;
  return real(args, input);
};
const config = resolveNftablesOptions(
  'wave',
  nftablesOptionsSchema.parse({ ports: [7000], table: 'pcwave' }),
);
const action = createNftablesAction(
  'wave',
  config,
  { logger: silentLogger, clock: systemClock, baseDir: null },
  { exec },
);
const guard = await createGuard({ store: { memory: true }, defaults: { ignoreip: [] }, jails: { w: {} } });
const runner = new ActionRunner([action], { clock: systemClock, checkIntervalMs: 200 });
await runner.start(guard);
await runner.idle();
const before = calls;
await Promise.all(
  Array.from({ length: count }, (_, i) =>
    guard.ban(`172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, { duration: '1h' }),
  ),
);
await runner.idle();
const waveCalls = calls - before;
// An admin flushes the ruleset: the runner's check re-creates the table and restores every ban.
await real(['flush', 'ruleset']);
const size = async () => {
  try {
    const text = await real(['-j', 'list', 'set', 'inet', 'pcwave', 'wave_v4']);
    return (JSON.parse(text).nftables.find((i: { set?: unknown }) => i.set).set.elem ?? []).length as number;
  } catch {
    return 0;
  }
};
const deadline = Date.now() + 10_000;
let restored = await size();
while (Date.now() < deadline && restored < count) {
  await new Promise((r) => setTimeout(r, 100));
  restored = await size();
}
console.log(JSON.stringify({ startCalls: before, waveCalls, restored, stats: runner.stats() }));
await runner.close();
await guard.close();
