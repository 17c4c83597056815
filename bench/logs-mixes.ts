// Log mixes for `npm run bench:logs`, written independently of bench/logs-generate.ts (another
// random source, other message shapes and proportions), so that no mix is tuned to the engine's
// prefilter. Each mix names the portcullis filter and the fail2ban filter that read it.
//
//   node --import tsx bench/logs-mixes.ts MIX [LINES=1000000] [FILE=bench/out/MIX.log]
//
// Mixes:
//   failures-40   auth.log, 40% of lines are failures sshd's filters count, the rest noise
//   near-miss-80  auth.log, 80% of lines hold the literal text of a failregex ("sshd[", " from ",
//                 " port ", "Failed ", "Invalid user ", "authentication failure") and match none
//   long-lines    auth.log, 15% of the lines 1-4 KiB long (long user names, key blobs, banners)
//   web-access    nginx access log (combined format), scanners' 404s among normal traffic
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Mix {
  name: string;
  description: string;
  /** portcullis filter (bundled name). */
  filter: string;
  /** fail2ban filter file. */
  fail2ban: string;
  generate(next: Next): string;
}

/** splitmix32: a different generator from logs-generate.ts's mulberry32. */
function splitmix(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

export interface Next {
  random(): number;
  int(lo: number, hi: number): number;
  pick<T>(list: readonly T[]): T;
  /** "Mon DD HH:MM:SS" advancing a little per line. */
  syslogStamp(): string;
  /** "[DD/Mon/YYYY:HH:MM:SS +0000]". */
  clfStamp(): string;
  ip(): string;
  pid(): number;
}

const MONTH = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const NAMES = ['svc', 'build', 'tester', 'ops', 'web', 'db', 'backup', 'monitor', 'app', 'dev', 'sys', 'ci'];
const HOSTS = ['bastion', 'edge01', 'node-7'];

function makeNext(seed: number): Next {
  const random = splitmix(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  let timeMs = Date.UTC(2026, 9, 3, 6, 0, 0);
  let pid = 50_000;
  const pad = (n: number) => String(n).padStart(2, '0');
  const step = () => {
    timeMs += int(0, 25);
    return new Date(timeMs);
  };
  return {
    random,
    int,
    pick: (list) => list[Math.floor(random() * list.length)] as never,
    syslogStamp() {
      const d = step();
      return `${MONTH[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    },
    clfStamp() {
      const d = step();
      return `[${pad(d.getUTCDate())}/${MONTH[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000]`;
    },
    ip() {
      const r = random();
      if (r < 0.15) return `2001:db8:${int(0, 0xffff).toString(16)}::${int(1, 0xffff).toString(16)}`;
      if (r < 0.55) return `198.18.${int(0, 255)}.${int(1, 254)}`;
      return `100.${int(64, 127)}.${int(0, 255)}.${int(1, 254)}`;
    },
    pid: () => ++pid,
  };
}

function word(n: Next, min: number, max: number): string {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (let i = n.int(min, max); i > 0; i--) out += chars[n.int(0, chars.length - 1)];
  return out;
}

function sshLine(n: Next, text: string): string {
  return `${n.syslogStamp()} ${n.pick(HOSTS)} sshd[${n.pid()}]: ${text}`;
}

/** Failures both filters count (normal mode). */
function sshFailure(n: Next): string {
  const ip = n.ip();
  const port = n.int(1025, 65000);
  const r = n.random();
  if (r < 0.45) return sshLine(n, `Failed password for ${n.pick(NAMES)} from ${ip} port ${port} ssh2`);
  if (r < 0.7) return sshLine(n, `Invalid user ${word(n, 3, 10)} from ${ip} port ${port}`);
  if (r < 0.85)
    return sshLine(n, `Failed password for invalid user ${word(n, 3, 10)} from ${ip} port ${port} ssh2`);
  return sshLine(n, `User ${n.pick(NAMES)} from ${ip} not allowed because not listed in AllowUsers`);
}

/** Noise without the filters' literal text. */
function noise(n: Next): string {
  const r = n.random();
  const stamp = n.syslogStamp();
  const host = n.pick(HOSTS);
  if (r < 0.3) return `${stamp} ${host} kernel: [${n.int(1, 99999)}.${n.int(100000, 999999)}] eth0: link up`;
  if (r < 0.6) return `${stamp} ${host} systemd[1]: Started session-${n.int(1, 9999)}.scope.`;
  if (r < 0.8) return `${stamp} ${host} cron[${n.pid()}]: (root) CMD (run-parts /etc/cron.hourly)`;
  return `${stamp} ${host} dhclient[${n.pid()}]: DHCPACK of 10.0.${n.int(0, 255)}.${n.int(1, 254)}`;
}

/** Lines that contain what the filters' prefilters look for, and match nothing. */
function nearMiss(n: Next): string {
  const ip = n.ip();
  const port = n.int(1025, 65000);
  const user = n.pick(NAMES);
  switch (n.int(0, 9)) {
    case 0:
      return sshLine(n, `Accepted password for ${user} from ${ip} port ${port} ssh2`);
    case 1:
      return sshLine(
        n,
        `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=${user}`,
      );
    case 2:
      return sshLine(n, `Received disconnect from ${ip} port ${port}:11: Bye Bye [preauth]`);
    case 3:
      return sshLine(n, `Disconnected from user ${user} ${ip} port ${port}`);
    case 4:
      return sshLine(n, `Connection closed by authenticating user ${user} ${ip} port ${port} [preauth]`);
    case 5:
      // Failed and from ... port, but a method no filter counts and an unknown tail.
      return sshLine(n, `Failed password for ${user} from ${ip} port ${port} ssh2 [unexpected suffix]`);
    case 6:
      return `${n.syslogStamp()} ${n.pick(HOSTS)} webapp[${n.pid()}]: Failed password for ${user} from ${ip} port ${port} ssh2`;
    case 7:
      return sshLine(n, `Invalid user ${user} from ${ip} port ${port} from ${n.ip()} port ${port}`);
    case 8:
      return sshLine(n, `Postponed keyboard-interactive for ${user} from ${ip} port ${port} ssh2 [preauth]`);
    default:
      return sshLine(
        n,
        `Accepted publickey for ${user} from ${ip} port ${port} ssh2: RSA SHA256:${word(n, 43, 43)}`,
      );
  }
}

/** 1-4 KiB lines. */
function longLine(n: Next): string {
  const ip = n.ip();
  const port = n.int(1025, 65000);
  const r = n.random();
  if (r < 0.4) return sshLine(n, `Invalid user ${word(n, 1000, 4000)} from ${ip} port ${port}`);
  if (r < 0.7)
    return sshLine(
      n,
      `Accepted publickey for ${n.pick(NAMES)} from ${ip} port ${port} ssh2: ${word(n, 1000, 3000)}`,
    );
  return sshLine(
    n,
    `Unable to negotiate with ${ip} port ${port}: no matching host key type found. Their offer: ${word(n, 1000, 3000)} [preauth]`,
  );
}

const SCANS = ['/wp-login.php', '/phpmyadmin/', '/.env', '/.git/config', '/xmlrpc.php', '/admin/config.php'];
const PAGES = [
  '/',
  '/about',
  '/blog/2026/10/notes',
  '/static/app.js',
  '/static/style.css',
  '/api/items?page=2',
];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15',
  'curl/8.5.0',
];

function accessLine(n: Next): string {
  const ip = n.ip();
  const r = n.random();
  const agent = n.pick(AGENTS);
  if (r < 0.15) return `${ip} - - ${n.clfStamp()} "GET ${n.pick(SCANS)} HTTP/1.1" 404 153 "-" "${agent}"`;
  if (r < 0.25)
    return `${ip} - - ${n.clfStamp()} "GET /missing/${word(n, 4, 12)}.png HTTP/1.1" 404 153 "-" "${agent}"`;
  return `${ip} - - ${n.clfStamp()} "GET ${n.pick(PAGES)} HTTP/2.0" 200 ${n.int(200, 90000)} "https://example.org/" "${agent}"`;
}

export const MIXES: readonly Mix[] = [
  {
    name: 'failures-40',
    description: '40% failures, 60% noise',
    filter: 'sshd',
    fail2ban: '/etc/fail2ban/filter.d/sshd.conf',
    generate: (n) => (n.random() < 0.4 ? sshFailure(n) : noise(n)),
  },
  {
    name: 'near-miss-80',
    description: '80% near-misses (the literal text of a failregex, no match), 10% failures, 10% noise',
    filter: 'sshd',
    fail2ban: '/etc/fail2ban/filter.d/sshd.conf',
    generate: (n) => {
      const r = n.random();
      return r < 0.8 ? nearMiss(n) : r < 0.9 ? sshFailure(n) : noise(n);
    },
  },
  {
    name: 'long-lines',
    description: '15% of the lines 1-4 KiB, 20% failures, 35% near-misses',
    filter: 'sshd',
    fail2ban: '/etc/fail2ban/filter.d/sshd.conf',
    generate: (n) => {
      const r = n.random();
      return r < 0.15 ? longLine(n) : r < 0.35 ? sshFailure(n) : r < 0.7 ? nearMiss(n) : noise(n);
    },
  },
  {
    name: 'web-access',
    description: 'nginx access log, 15% scanner 404s',
    filter: 'nginx-botsearch',
    fail2ban: '/etc/fail2ban/filter.d/nginx-botsearch.conf',
    generate: accessLine,
  },
];

/** Writes `lines` lines of `mix` to `file`. */
export async function generateMix(mix: Mix, lines: number, file: string, seed = 7): Promise<number> {
  const n = makeNext(seed);
  mkdirSync(dirname(file), { recursive: true });
  const out = createWriteStream(file, { highWaterMark: 1 << 20 });
  let buffer = '';
  for (let i = 0; i < lines; i++) {
    buffer += `${mix.generate(n)}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await new Promise<void>((r) => out.once('drain', () => r()));
      buffer = '';
    }
  }
  out.end(buffer);
  await new Promise<void>((r) => out.once('finish', () => r()));
  return lines;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const mix = MIXES.find((m) => m.name === process.argv[2]);
  if (mix === undefined) {
    console.error(`usage: logs-mixes.ts MIX [LINES] [FILE]; mixes: ${MIXES.map((m) => m.name).join(', ')}`);
    process.exit(2);
  }
  const lines = Number(process.argv[3] ?? 1_000_000);
  const file = resolve(process.argv[4] ?? `bench/out/${mix.name}.log`);
  await generateMix(mix, lines, file);
  process.stdout.write(`${file}: ${lines} lines\n`);
}
