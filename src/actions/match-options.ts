import { z } from 'zod';

/**
 * Options every firewall kind shares (`nftables`, `ipset`, `iptables`): which ports and protocol a
 * ban covers, where packets are filtered, and the verdict.
 */

export const show = (value: unknown) => JSON.stringify(value) ?? String(value);

const portError = (issue: { input?: unknown }) =>
  `expected a port (1-65535) or a range like "8000-8100", got ${show(issue.input)}`;
const portSchema = z.union(
  [
    z
      .number({ error: portError })
      .int({ error: portError })
      .min(1, { error: portError })
      .max(65535, { error: portError }),
    z
      .string()
      .regex(/^\d{1,5}(-\d{1,5})?$/, { error: portError })
      .refine(
        (text) => {
          const [low, high = low] = text.split('-').map(Number) as [number, number?];
          return low >= 1 && (high as number) <= 65535 && low <= (high as number);
        },
        { error: portError },
      ),
  ],
  { error: portError },
);

/** What the ban covers and where, shared by the `nftables`, `ipset` and `iptables` kinds. */
export const matchShape = {
  /** Destination ports the ban covers (`[22]`, `[80, 443, "8000-8100"]`). Default: every port (and every protocol unless `protocol` is set). */
  ports: z
    .array(portSchema)
    .min(1, { error: 'expected at least one port; omit ports to ban every port' })
    .optional()
    .describe('Destination ports the ban covers: numbers or "low-high" ranges. Default: every port.'),
  /** `tcp` or `udp`. Default `tcp` when `ports` is given; without ports, every protocol. */
  protocol: z
    .enum(['tcp', 'udp'], { error: (issue) => `expected "tcp" or "udp", got ${show(issue.input)}` })
    .optional()
    .describe('tcp or udp. Default tcp with ports; without ports every protocol.'),
  /**
   * The parent chain the jump to portcullis's chain is inserted in: `input` (`INPUT`: this host's
   * services), `forward` (`FORWARD`: routed traffic) or `docker-user` (Docker's `DOCKER-USER`:
   * published container ports, matched on the port the client connected to, before Docker's DNAT).
   * Default `input`.
   */
  chain: z
    .enum(['input', 'forward', 'docker-user'], {
      error: (issue) => `expected "input", "forward" or "docker-user", got ${show(issue.input)}`,
    })
    .optional()
    .describe('input (default: INPUT), forward (FORWARD), or docker-user (DOCKER-USER).'),
  /** `drop` (silently) or `reject` (TCP reset with `protocol: tcp`, ICMP port unreachable otherwise). Default `drop`. */
  verdict: z
    .enum(['drop', 'reject'], { error: (issue) => `expected "drop" or "reject", got ${show(issue.input)}` })
    .optional()
    .describe('drop (default) or reject (TCP reset / ICMP port unreachable).'),
};
