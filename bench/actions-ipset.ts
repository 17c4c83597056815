// npm run bench:actions-ipset — the ipset action against the kernel, inside a network namespace this
// script creates (`pc-bench-<rand>`, removed at the end, also on error; every tool runs only through
// `ip netns exec`): (a) 100,000 bans applied by the action's batch path (`IpsetAction.apply`: one
// `ipset restore -exist`) and restored (`restore`: a twin set filled and swapped in, the replay at
// start, on sets that still hold them), median of 3 rounds, each on fresh sets; against (b) one
// `ipset add` / `ipset del` process per ban, as fail2ban's iptables-ipset actions do: 1,000 calls
// each, median of 3, extrapolated to 100,000.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { IpsetAction, removeIpsetObjects } from '../src/actions/ipset/ipset-action.js';
import { ipsetOptionsSchema, resolveIpsetOptions } from '../src/actions/ipset/options.js';
import type { ToolExec } from '../src/actions/iptables/exec.js';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/logger.js';
import type { Decision } from '../src/core/types.js';
import { fmt, machineLine, median } from './machine.js';

const BANS = Number(process.env.BANS ?? 100_000);
const PER_CALL = Number(process.env.PER_CALL ?? 1000);
const ROUNDS = 3;
const NS = `pc-bench-${randomBytes(3).toString('hex')}`;

/** `ip netns exec <NS> <binary> ...args`, `input` on stdin (never a shell). */
const exec: ToolExec = (binary, args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(
      'ip',
      ['netns', 'exec', NS, binary, ...args],
      { maxBuffer: 512 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) =>
        error === null
          ? resolve(stdout)
          : reject(new Error(`${binary} ${args.join(' ')}: ${stderr || error.message}`)),
    );
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

const size = async (set: string) =>
  Number(/Number of entries: (\d+)/.exec(await exec('ipset', ['list', '-t', set]))?.[1]);
const config = resolveIpsetOptions('bench', ipsetOptionsSchema.parse({ ports: [22] }));
const context = { logger: silentLogger, clock: systemClock, baseDir: null };

async function batchRound(): Promise<{ applyMs: number; restoreMs: number; calls: number }> {
  await removeIpsetObjects([config.setPrefix], exec);
  const batch = decisions(BANS);
  const action = new IpsetAction('bench', config, context, { exec });
  await action.start();
  const before = action.ipsetCalls;
  let started = performance.now();
  await action.apply(batch);
  const applyMs = performance.now() - started;
  const calls = action.ipsetCalls - before;
  if ((await size(`${config.setPrefix}-v4`)) !== BANS)
    throw new Error('apply: the set does not hold every ban');
  const restarted = new IpsetAction('bench', config, context, { exec });
  await restarted.start();
  started = performance.now();
  await restarted.restore(batch);
  const restoreMs = performance.now() - started;
  if ((await size(`${config.setPrefix}-v4`)) !== BANS)
    throw new Error('restore: the set does not hold every ban');
  return { applyMs, restoreMs, calls };
}

async function perCallRound(): Promise<{ addMs: number; deleteMs: number }> {
  await exec('ipset', ['restore', '-exist'], 'destroy f2b\ncreate f2b hash:ip timeout 0 maxelem 1048576\n');
  const targets = decisions(PER_CALL).map((d) => d.target);
  let started = performance.now();
  for (const ip of targets) await exec('ipset', ['add', 'f2b', ip, 'timeout', '3600', '-exist']);
  const addMs = performance.now() - started;
  if ((await size('f2b')) !== PER_CALL) throw new Error('per call: the set does not hold every ban');
  started = performance.now();
  for (const ip of targets) await exec('ipset', ['del', 'f2b', ip, '-exist']);
  const deleteMs = performance.now() - started;
  await exec('ipset', ['destroy', 'f2b']);
  return { addMs, deleteMs };
}

execFileSync('ip', ['netns', 'add', NS]);
try {
  console.log(machineLine());
  console.log(
    `nproc ${execFileSync('nproc').toString().trim()}, node ${process.version}, ${(await exec('ipset', ['version'])).trim().split('\n')[0]}, kernel ${execFileSync('uname', ['-r']).toString().trim()}`,
  );
  console.log(`namespace ${NS}; ${fmt(BANS)} bans (IPv4, 1 h timeout); batch: median of ${ROUNDS}`);
  const batch: Awaited<ReturnType<typeof batchRound>>[] = [];
  const single: Awaited<ReturnType<typeof perCallRound>>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    batch.push(await batchRound());
    single.push(await perCallRound());
  }
  await removeIpsetObjects([config.setPrefix], exec);
  const applyMs = median(batch.map((b) => b.applyMs));
  const restoreMs = median(batch.map((b) => b.restoreMs));
  const addMs = median(single.map((s) => s.addMs));
  const deleteMs = median(single.map((s) => s.deleteMs));
  const scale = BANS / PER_CALL;
  console.log('');
  console.log(`| path | ${fmt(BANS)} applied | restored | ipset calls |`);
  console.log('| --- | --- | --- | --- |');
  console.log(
    `| portcullis batch (\`ipset restore -exist\`) | ${fmt(applyMs)} ms | ${fmt(restoreMs)} ms (twin + swap) | ${batch[0]?.calls} per apply |`,
  );
  console.log(
    `| one \`ipset add\` per ban (fail2ban) | ~${fmt((addMs * scale) / 1000, 1)} s (measured ${fmt(PER_CALL)}: ${fmt(addMs)} ms) | | ${fmt(BANS)} |`,
  );
  console.log(
    `| one \`ipset del\` per unban (fail2ban) | ~${fmt((deleteMs * scale) / 1000, 1)} s (measured ${fmt(PER_CALL)}: ${fmt(deleteMs)} ms) | | ${fmt(BANS)} |`,
  );
  console.log('');
  console.log(
    `batch rounds: apply ${batch.map((b) => fmt(b.applyMs)).join(' / ')} ms, restore ${batch.map((b) => fmt(b.restoreMs)).join(' / ')} ms; ` +
      `per-call ms/call: ${fmt(addMs / PER_CALL, 2)} add, ${fmt(deleteMs / PER_CALL, 2)} del; batch apply is ${fmt((addMs * scale) / applyMs, 0)}× faster than one call per ban`,
  );
} finally {
  execFileSync('ip', ['netns', 'delete', NS]);
}
