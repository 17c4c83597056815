// npm run bench:actions — the nftables action against the kernel, inside a network namespace this
// script creates (`pc-bench-<rand>`, removed at the end, also on error; nft runs only through
// `ip netns exec`): (a) 100,000 bans applied by the action's batch path (`NftablesAction.apply`:
// one `nft -f -` script per 50,000 elements) and restored (`restore`: flush + add, the replay at
// start, on a set that still holds them), median of 3 rounds, each on a fresh table; against
// (b) one `nft add element` / `nft delete element` process per ban, as fail2ban's nftables action
// does: 1,000 calls each, median of 3, extrapolated to 100,000.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { NftExec } from '../src/actions/nftables/nft.js';
import { NftablesAction } from '../src/actions/nftables/nftables-action.js';
import { nftablesOptionsSchema, resolveNftablesOptions } from '../src/actions/nftables/options.js';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/logger.js';
import type { Decision } from '../src/core/types.js';
import { fmt, machineLine, median } from './machine.js';

const BANS = Number(process.env.BANS ?? 100_000);
const PER_CALL = Number(process.env.PER_CALL ?? 1000);
const ROUNDS = 3;
const TABLE = 'pcbench';
const NS = `pc-bench-${randomBytes(3).toString('hex')}`;

/** `ip netns exec <NS> nft ...args`, `input` on stdin (never a shell). */
const exec: NftExec = (args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(
      'ip',
      ['netns', 'exec', NS, 'nft', ...args],
      { maxBuffer: 512 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) =>
        error === null
          ? resolve(stdout)
          : reject(new Error(`nft ${args.join(' ')}: ${stderr || error.message}`)),
    );
    // nft with a command on its argv does not read stdin: a closed pipe is not an error.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });

function decisions(count: number): Decision[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    target: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    jail: 'sshd',
    reason: 'bench',
    startedAt: now,
    expiresAt: now + 3_600_000,
    banCount: 1,
    dryRun: false,
    origin: 'bench:1',
  }));
}

async function setSize(set: string): Promise<number> {
  const text = await exec(['-j', 'list', 'set', 'inet', TABLE, set]);
  const items = (JSON.parse(text) as { nftables: { set?: { elem?: unknown[] } }[] }).nftables;
  return items.find((item) => item.set !== undefined)?.set?.elem?.length ?? 0;
}

const dropTable = () => exec(['-f', '-'], `add table inet ${TABLE}\ndelete table inet ${TABLE}\n`);
const config = resolveNftablesOptions('bench', nftablesOptionsSchema.parse({ table: TABLE, ports: [22] }));
const context = { logger: silentLogger, clock: systemClock, baseDir: null };

async function batchRound(): Promise<{ applyMs: number; restoreMs: number; calls: number }> {
  await dropTable();
  const batch = decisions(BANS);
  const action = new NftablesAction('bench', config, context, { exec });
  await action.start();
  let started = performance.now();
  const before = action.calls;
  await action.apply(batch);
  const applyMs = performance.now() - started;
  const calls = action.calls - before;
  if ((await setSize('bench_v4')) !== BANS) throw new Error('apply: the set does not hold every ban');
  // A restart: a new action instance, the kernel still holding the bans; restore replaces them.
  const restarted = new NftablesAction('bench', config, context, { exec });
  await restarted.start();
  started = performance.now();
  await restarted.restore(batch);
  const restoreMs = performance.now() - started;
  if ((await setSize('bench_v4')) !== BANS) throw new Error('restore: the set does not hold every ban');
  return { applyMs, restoreMs, calls };
}

async function perCallRound(): Promise<{ addMs: number; deleteMs: number }> {
  await dropTable();
  await exec(
    ['-f', '-'],
    `add table inet ${TABLE}\nadd set inet ${TABLE} f2b { type ipv4_addr; flags timeout; }\n`,
  );
  const targets = decisions(PER_CALL).map((d) => d.target);
  let started = performance.now();
  // fail2ban's actionban: one process per ban.
  for (const ip of targets) await exec(['add', 'element', 'inet', TABLE, 'f2b', `{ ${ip} timeout 3600s }`]);
  const addMs = performance.now() - started;
  if ((await setSize('f2b')) !== PER_CALL) throw new Error('per call: the set does not hold every ban');
  started = performance.now();
  for (const ip of targets) await exec(['delete', 'element', 'inet', TABLE, 'f2b', `{ ${ip} }`]);
  const deleteMs = performance.now() - started;
  return { addMs, deleteMs };
}

execFileSync('ip', ['netns', 'add', NS]);
try {
  const cpu = execFileSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"])
    .toString()
    .trim();
  console.log(machineLine());
  console.log(
    `nproc ${execFileSync('nproc').toString().trim()}, ${cpu}, node ${process.version}, ` +
      `${(await exec(['--version'])).trim()}, kernel ${execFileSync('uname', ['-r']).toString().trim()}`,
  );
  console.log(`namespace ${NS}; ${fmt(BANS)} bans (IPv4, 1 h timeout); batch: median of ${ROUNDS}`);
  const batch: Awaited<ReturnType<typeof batchRound>>[] = [];
  const single: Awaited<ReturnType<typeof perCallRound>>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    batch.push(await batchRound());
    single.push(await perCallRound());
  }
  await dropTable();
  const applyMs = median(batch.map((b) => b.applyMs));
  const restoreMs = median(batch.map((b) => b.restoreMs));
  const addMs = median(single.map((s) => s.addMs));
  const deleteMs = median(single.map((s) => s.deleteMs));
  const scale = BANS / PER_CALL;
  console.log('');
  console.log(`| path | ${fmt(BANS)} applied | restored | nft calls |`);
  console.log('| --- | --- | --- | --- |');
  console.log(
    `| portcullis batch (\`nft -f -\`) | ${fmt(applyMs)} ms | ${fmt(restoreMs)} ms | ${batch[0]?.calls} per apply |`,
  );
  console.log(
    `| one \`nft add element\` per ban (fail2ban) | ~${fmt((addMs * scale) / 1000, 1)} s (measured ${fmt(PER_CALL)}: ${fmt(addMs)} ms) | ~${fmt((addMs * scale) / 1000, 1)} s (re-ban each) | ${fmt(BANS)} |`,
  );
  console.log(
    `| one \`nft delete element\` per unban (fail2ban) | ~${fmt((deleteMs * scale) / 1000, 1)} s (measured ${fmt(PER_CALL)}: ${fmt(deleteMs)} ms) | | ${fmt(BANS)} |`,
  );
  console.log('');
  console.log(
    `batch rounds: apply ${batch.map((b) => fmt(b.applyMs)).join(' / ')} ms, restore ${batch.map((b) => fmt(b.restoreMs)).join(' / ')} ms; ` +
      `per-call ms/call: ${fmt(addMs / PER_CALL, 2)} add, ${fmt(deleteMs / PER_CALL, 2)} delete (extrapolated ×${fmt(scale)})`,
  );
  console.log(
    `goal (100k applied < 2 s, restored < 2 s): apply ${applyMs < 2000 ? 'met' : 'NOT met'}, restore ${restoreMs < 2000 ? 'met' : 'NOT met'}; ` +
      `batch apply is ${fmt((addMs * scale) / applyMs, 0)}× faster than one call per ban`,
  );
} finally {
  execFileSync('ip', ['netns', 'delete', NS]);
}
