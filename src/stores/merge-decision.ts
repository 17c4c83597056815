import type { Decision } from '../core/types.js';

/**
 * What a store keeps when a target that already has a decision is banned again: the newer
 * decision's details, with the later expiry (a permanent ban is never shortened) and the higher
 * ban count. An enforced ban is never downgraded to a dry-run one. A decision that had already
 * expired when the new one started is simply replaced.
 */
export function mergeDecision(existing: Decision | undefined, incoming: Decision): Decision {
  if (existing === undefined) return incoming;
  if (existing.expiresAt !== null && existing.expiresAt <= incoming.startedAt) return incoming;
  if (incoming.dryRun && !existing.dryRun) return existing;
  if (existing.dryRun && !incoming.dryRun) return incoming;
  const expiresAt =
    existing.expiresAt === null || incoming.expiresAt === null
      ? null
      : Math.max(existing.expiresAt, incoming.expiresAt);
  return { ...incoming, expiresAt, banCount: Math.max(existing.banCount, incoming.banCount) };
}
