import { writeFileSync } from 'node:fs';

/**
 * The starter configuration `portcullis init` writes: a proxy in front of 127.0.0.1:3000 with the
 * scanner and login jails, an sshd log jail enforced by nftables, a SQLite store. Every line is
 * valid as written (a test loads it with the real loader); the comments say what to change.
 */
export const STARTER_CONFIG = `# portcullis configuration, written by \`portcullis init\`.
# Check it:  portcullis check-config -c portcullis.yaml
# Run it:    portcullis run -c portcullis.yaml        (then: portcullis status)
# Durations: 90s, 10m, 1h30m, 1d, 2w; -1 is permanent. Relative paths are relative to this file.
# Editors: portcullis schema > portcullis.schema.json, then add "$schema: ./portcullis.schema.json".

# Where bans, ban history and log positions are kept. An embedded SQLite file is enough for one
# host; several portcullis instances share decisions through Redis instead:
#   store: { redis: { url: redis://127.0.0.1:6379, prefix: "pc:" } }
store:
  sqlite: ./portcullis.db

# What every jail inherits; a jail's own setting replaces it.
defaults:
  maxretry: 5            # failures ...
  findtime: 10m          # ... within this window ...
  bantime: 1h            # ... ban for this long
  bantime_increment:     # repeat offenders: 1h, 2h, 4h, ... up to a week
    enabled: true
    factor: 2
    maxtime: 1w
  # Never counted nor banned. Add your office or VPN range here.
  ignoreip: [127.0.0.0/8, "::1"]

# The reverse proxy: clients connect here, your application listens on 127.0.0.1:3000.
proxy:
  listen: "0.0.0.0:8080"
  target: http://127.0.0.1:3000
  # Behind a load balancer, believe its X-Forwarded-For (and only its):
  # trusted_proxies: [10.0.0.0/8]
  # A banned client's connection is closed at accept; or answer it: deny: { status: 403 }
  deny: drop
  # access_log: { path: ./access.log }

# Firewall: bans of the jails that list it are enforced by the kernel (nftables set + rule in
# table inet portcullis). portcullis needs root (or CAP_NET_ADMIN) for it.
# Remove everything it added: portcullis flush -c portcullis.yaml
actions:
  ssh-fw: { nftables: { ports: [22] } }

# The control socket used by \`portcullis status\`, \`ban\`, \`unban\`, \`reload\`, \`stop\`.
# Default: /run/portcullis/portcullis.sock as root, else $XDG_RUNTIME_DIR or next to this file.
# control: { socket: /run/portcullis/portcullis.sock, mode: "0600" }    # or control: false

jails:
  # Vulnerability scanners probing for .env, wp-login.php, .git/config ... (rules/http/scanners.yaml)
  scanners:
    source: http
    filter: scanners
    maxretry: 3
    bantime: 1d

  # Failed logins on your application: adjust the path and status codes to yours.
  web-auth:
    source: http
    filter: { status: [401, 403], path: "^/(login|api/session)" }

  # SSH password guessing, from the system log; banned in the kernel on port 22.
  # With journald only: source: { command: [journalctl, -f, -o, json, -u, ssh] }
  sshd:
    source: { log: /var/log/auth.log }
    filter: sshd
    actions: [ssh-fw]
`;

/** Writes {@link STARTER_CONFIG} to `file`; refuses to replace an existing file unless `force`. */
export function runInit(file: string, options: { force?: boolean } = {}): 'written' | 'exists' {
  try {
    // "wx" is O_EXCL: no window in which an existing file could be clobbered.
    writeFileSync(file, STARTER_CONFIG, {
      flag: options.force === true ? 'w' : 'wx',
      mode: 0o640,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw error;
  }
  return 'written';
}
