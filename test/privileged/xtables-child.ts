// Run inside a server namespace: a guard (memory store), an ActionRunner and an ipset or iptables
// action whose tool calls are counted. Bans a wave of N addresses, hands the action hostile
// targets directly, has an admin flush the firewall, and prints what the kernel holds as JSON.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createIpsetAction } from '../../src/actions/ipset/ipset-action.js';
import { ipsetOptionsSchema, resolveIpsetOptions } from '../../src/actions/ipset/options.js';
import { toolExec } from '../../src/actions/iptables/exec.js';
import { createIptablesAction } from '../../src/actions/iptables/iptables-action.js';
import { iptablesOptionsSchema, resolveIptablesOptions } from '../../src/actions/iptables/options.js';
import { ActionRunner } from '../../src/actions/runner.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Decision } from '../../src/core/types.js';
import { createGuard } from '../../src/guard.js';

const kind = process.argv[2] as 'ipset' | 'iptables';
const count = Number(process.argv[3] ?? 10_000);
const canary = process.argv[4] as string;
const real = toolExec();
const calls: Record<string, number> = {};
const exec = (binary: string, args: readonly string[], input?: string) => {
  calls[binary] = (calls[binary] ?? 0) + 1;
  return real(binary, args, input);
};
const context = { logger: silentLogger, clock: systemClock, baseDir: null };
const action =
  kind === 'ipset'
    ? createIpsetAction(
        'wave',
        resolveIpsetOptions('wave', ipsetOptionsSchema.parse({ ports: [7000] })),
        context,
        {
          exec,
        },
      )
    : createIptablesAction(
        'wave',
        resolveIptablesOptions('wave', iptablesOptionsSchema.parse({ ports: [7000] })),
        context,
        { exec },
      );
const sh = (binary: string, ...args: string[]) => execFileSync(binary, args, { encoding: 'utf8' });
const entries = () =>
  kind === 'ipset'
    ? sh('ipset', 'save', 'pc-wave-v4')
        .split('\n')
        .filter((l) => l.startsWith('add '))
    : sh('iptables', '-w', '-S', 'pc-wave')
        .split('\n')
        .filter((l) => l.startsWith('-A pc-wave -s '));

const guard = await createGuard({ store: { memory: true }, defaults: { ignoreip: [] }, jails: { w: {} } });
const runner = new ActionRunner([action], { clock: systemClock, checkIntervalMs: 200 });
await runner.start(guard);
await runner.idle();
const before = { ...calls };
await Promise.all(
  Array.from({ length: count }, (_, i) =>
    guard.ban(`172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, { duration: '1h' }),
  ),
);
await runner.idle();
const delta = (binary: string) => (calls[binary] ?? 0) - (before[binary] ?? 0);
const wave = {
  ipset: delta('ipset'),
  restore: delta('iptables-restore'),
  entries: entries().length,
};

// Hostile targets handed to the action directly (the guard itself refuses them): none may reach a
// command line or add an element; the legitimate one next to them is applied.
const now = Date.now();
const hostile = [
  `1.2.3.4; touch ${canary}`,
  `$(touch ${canary})`,
  `\`touch ${canary}\``,
  '1.2.3.4\nadd pc-wave-v4 9.9.9.9 timeout 0',
  '1.2.3.4 -j ACCEPT',
  ' 1.2.3.4',
  '1.2.3.4/33',
];
const decision = (target: string): Decision => ({
  target,
  jail: 'w',
  reason: 'hostile',
  startedAt: now,
  expiresAt: now + 60_000,
  banCount: 1,
  dryRun: false,
  origin: 'test',
});
let hostileError: string | null = null;
try {
  await action.apply([...hostile.map(decision), decision('198.51.100.7')]);
} catch (error) {
  hostileError = String(error);
}
const after = entries();
const hostileResult = {
  error: hostileError,
  added: after.length - wave.entries,
  has: (text: string) => after.some((l) => l.includes(` ${text} `) || l.includes(` ${text}/32 `)),
};
const hostileSummary = {
  error: hostileResult.error,
  added: hostileResult.added,
  legit: hostileResult.has('198.51.100.7'),
  injected: hostileResult.has('9.9.9.9') || hostileResult.has('1.2.3.4'),
  canary: existsSync(canary),
};

// An admin flushes the firewall: the runner's check re-creates it and restores every ban.
for (const binary of ['iptables', 'ip6tables']) {
  sh(binary, '-w', '-F');
  sh(binary, '-w', '-X');
}
if (kind === 'ipset') sh('ipset', 'destroy');
const deadline = Date.now() + 15_000;
let restored = 0;
while (Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 200));
  try {
    restored = entries().length;
  } catch {
    restored = 0;
  }
  if (restored === count) break;
}
const jump = sh('iptables', '-w', '-S', 'INPUT').includes('-j pc-wave');
console.log(JSON.stringify({ wave, hostile: hostileSummary, restored, jump, stats: runner.stats() }));
await runner.close();
await guard.close();
