// npm run bench:matches — what keeping a ban's matched lines (`<matches>`) costs on the report
// path: report() with the log line passed, for a jail with a command action (kept) against one
// with a firewall only (not kept) and no line at all, alternated, medians of 5 rounds.
import type { PortcullisOptions } from '../src/config/schema.js';
import { createGuard } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory/memory-store.js';
import { fmt, machineLine, median } from './machine.js';

const REPORTS = Number(process.env.REPORTS ?? 200_000);
const ROUNDS = 5;
const LINE =
  'Nov 25 12:00:02 gate sshd[4102]: Failed password for invalid user admin from 192.0.2.8 port 40022 ssh2';

async function round(actions: unknown[], withLine: boolean, clients: number): Promise<number> {
  const options = {
    jails: {
      sshd: { maxretry: 1_000_000, findtime: '10m', ignoreip: [], ignoreself: false, actions },
    },
  } as PortcullisOptions;
  const guard = await createGuard(options, { store: new MemoryStore(), env: {} });
  const start = performance.now();
  for (let i = 0; i < REPORTS; i++) {
    const k = i % clients;
    const ip = `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
    await guard.report(ip, withLine ? { jail: 'sshd', match: LINE } : { jail: 'sshd' });
  }
  const rate = (REPORTS / (performance.now() - start)) * 1000;
  await guard.close();
  return rate;
}

const CASES: [string, unknown[], boolean][] = [
  ['no line passed', [{ command: { ban: ['/bin/true'] } }], false],
  ['line passed, not kept (nftables only)', [{ nftables: {} }], true],
  ['line passed and kept (command action)', [{ command: { ban: ['/bin/true'] } }], true],
];

console.log(machineLine());
for (const clients of [1_000, 200_000]) {
  const rates = CASES.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++)
    for (const [i, [, actions, withLine]] of CASES.entries())
      rates[i]?.push(await round(actions, withLine, clients));
  for (const [i, [name]] of CASES.entries())
    console.log(`${clients} clients, ${name}: ${fmt(median(rates[i] as number[]))} reports/s`);
}
