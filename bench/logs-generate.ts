// A realistic auth.log for benchmarks: an internet-facing host's day. Password-guessing sessions
// (each logs what OpenSSH and PAM log: invalid user, PAM failures, failed password, disconnect),
// scanners that drop the connection early, legitimate logins with their sessions, and cron,
// systemd and sudo noise. Seeded, so every run writes the same file.
//
//   node --import tsx bench/logs-generate.ts [LINES=1000000] [FILE=bench/out/auth.log] [SEED=42]
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** mulberry32: small, fast, good enough for picking log lines. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const USERS = [
  'admin',
  'test',
  'user',
  'oracle',
  'postgres',
  'ubuntu',
  'git',
  'ftpuser',
  'guest',
  'pi',
  'support',
  'deploy',
  'mysql',
  'hadoop',
  'jenkins',
  'minecraft',
  'steam',
  'tomcat',
  'nagios',
  'www',
];
const REAL_USERS = ['alice', 'bob', 'deploy'];

export interface GenerateOptions {
  lines: number;
  file: string;
  seed?: number;
  /** First line's time (ms). Default 2026-11-25T00:00:00Z. */
  startMs?: number;
}

/** Writes the log; resolves to the number of lines written. */
export async function generateAuthLog(options: GenerateOptions): Promise<number> {
  const random = prng(options.seed ?? 42);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  // A pool of attacking clients, some IPv6; documentation ranges plus a few private-looking ones.
  const attackers: string[] = [];
  for (const prefix of ['192.0.2.', '198.51.100.', '203.0.113.'])
    for (let i = 1; i < 255; i++) attackers.push(`${prefix}${i}`);
  for (let i = 1; i < 200; i++) attackers.push(`2001:db8:${(i * 7).toString(16)}::${(i * 13).toString(16)}`);
  const friends = ['10.0.0.5', '10.0.0.17', '172.16.3.4'];

  mkdirSync(dirname(options.file), { recursive: true });
  const out = createWriteStream(options.file, { highWaterMark: 1 << 20 });
  let timeMs = options.startMs ?? Date.UTC(2026, 10, 25, 0, 0, 0);
  let pid = 20_000;
  let written = 0;
  let buffer = '';
  const stamp = () => {
    const d = new Date(timeMs);
    const day = String(d.getUTCDate()).padStart(2, ' ');
    const hh = String(d.getUTCHours()).padStart(2, '0');
    const mm = String(d.getUTCMinutes()).padStart(2, '0');
    const ss = String(d.getUTCSeconds()).padStart(2, '0');
    return `${MONTHS[d.getUTCMonth()]} ${day} ${hh}:${mm}:${ss} gate`;
  };
  const emit = async (text: string) => {
    timeMs += int(0, 40); // several lines per second on a busy host
    buffer += `${stamp()} ${text}\n`;
    written++;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await new Promise<void>((r) => out.once('drain', () => r()));
      buffer = '';
    }
  };

  while (written < options.lines) {
    const kind = random();
    const p = ++pid;
    const ip = pick(attackers);
    const port = int(1024, 65535);
    if (kind < 0.42) {
      // A password-guessing session against a user that does not exist.
      const user = pick(USERS);
      await emit(`sshd[${p}]: Invalid user ${user} from ${ip} port ${port}`);
      await emit(`sshd[${p}]: pam_unix(sshd:auth): check pass; user unknown`);
      await emit(
        `sshd[${p}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}`,
      );
      await emit(`sshd[${p}]: Failed password for invalid user ${user} from ${ip} port ${port} ssh2`);
      await emit(`sshd[${p}]: Received disconnect from ${ip} port ${port}:11: Bye Bye [preauth]`);
      await emit(`sshd[${p}]: Disconnected from invalid user ${user} ${ip} port ${port} [preauth]`);
    } else if (kind < 0.55) {
      // Guessing root's password, several attempts on one connection.
      const tries = int(1, 3);
      await emit(
        `sshd[${p}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=root`,
      );
      for (let i = 0; i < tries; i++)
        await emit(`sshd[${p}]: Failed password for root from ${ip} port ${port} ssh2`);
      if (tries === 3 && random() < 0.5) {
        await emit(
          `sshd[${p}]: error: maximum authentication attempts exceeded for root from ${ip} port ${port} ssh2 [preauth]`,
        );
        await emit(
          `sshd[${p}]: Disconnecting authenticating user root ${ip} port ${port}: Too many authentication failures [preauth]`,
        );
      } else {
        await emit(`sshd[${p}]: Connection closed by authenticating user root ${ip} port ${port} [preauth]`);
      }
    } else if (kind < 0.63) {
      // Scanners and protocol probes.
      const probe = random();
      if (probe < 0.4) await emit(`sshd[${p}]: Connection closed by ${ip} port ${port} [preauth]`);
      else if (probe < 0.6)
        await emit(`sshd[${p}]: Did not receive identification string from ${ip} port ${port}`);
      else if (probe < 0.8) {
        await emit(`sshd[${p}]: error: kex_exchange_identification: Connection closed by remote host`);
        await emit(`sshd[${p}]: Connection closed by ${ip} port ${port}`);
      } else {
        await emit(
          `sshd[${p}]: Unable to negotiate with ${ip} port ${port}: no matching key exchange method found. Their offer: diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1 [preauth]`,
        );
      }
    } else if (kind < 0.75) {
      // A legitimate login and its session.
      const user = pick(REAL_USERS);
      const from = pick(friends);
      await emit(
        `sshd[${p}]: Accepted publickey for ${user} from ${from} port ${port} ssh2: ED25519 SHA256:q3V1nH0mC6c5ZyWgIYyK7d2bL3x0pZ0gHq7mAkz4f1E`,
      );
      await emit(`sshd[${p}]: pam_unix(sshd:session): session opened for user ${user}(uid=1000) by (uid=0)`);
      await emit(`systemd-logind[612]: New session ${p} of user ${user}.`);
      if (random() < 0.3)
        await emit(
          `sudo:    ${user} : TTY=pts/0 ; PWD=/home/${user} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx`,
        );
      await emit(`sshd[${p}]: Received disconnect from ${from} port ${port}:11: disconnected by user`);
      await emit(`sshd[${p}]: Disconnected from user ${user} ${from} port ${port}`);
      await emit(`sshd[${p}]: pam_unix(sshd:session): session closed for user ${user}`);
      await emit(`systemd-logind[612]: Session ${p} logged out. Waiting for processes to exit.`);
    } else {
      // Cron and systemd.
      const noise = random();
      if (noise < 0.6) {
        await emit(`CRON[${p}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)`);
        await emit(`CRON[${p}]: pam_unix(cron:session): session closed for user root`);
      } else if (noise < 0.8) {
        await emit(
          `systemd[1]: Starting ${pick(['apt-daily.service', 'logrotate.service', 'man-db.service', 'phpsessionclean.service'])} - Daily job...`,
        );
        await emit(
          `systemd[1]: ${pick(['apt-daily.service', 'logrotate.service', 'man-db.service'])}: Deactivated successfully.`,
        );
      } else {
        await emit(`systemd-logind[612]: Removed session ${p - 5}.`);
      }
    }
  }
  out.end(buffer);
  await new Promise<void>((r) => out.once('finish', () => r()));
  return written;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const lines = Number(process.argv[2] ?? 1_000_000);
  const file = resolve(process.argv[3] ?? 'bench/out/auth.log');
  const written = await generateAuthLog({ lines, file, seed: Number(process.argv[4] ?? 42) });
  process.stdout.write(`${file}: ${written} lines\n`);
}
