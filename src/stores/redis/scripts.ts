/**
 * Lua scripts the Redis store runs server-side, so each read-modify-write is one atomic step no
 * matter how many instances share the server. Loaded with `defineCommand`, so ioredis sends
 * EVALSHA and falls back to EVAL by itself after a server restart empties the script cache.
 *
 * Numbers go back to Redis and to JSON through `%.17g`, which prints integers (ms timestamps) as
 * plain digits and round-trips any double; Lua's default `tostring` would lose precision.
 */

/**
 * Sliding `findtime` window for one (jail, key): a sorted set whose members are
 * `<timeMs>:<unique>:<weight>` scored by `timeMs`.
 *
 * KEYS[1] the window. ARGV: timeMs, member, findTimeMs, maxRetry, ttlMs.
 * Returns `{count as string, 1 when maxRetry was reached (the window is then deleted) else 0}`.
 *
 * The window is anchored at the newest score in the set, not at this event's time: log lines can
 * arrive out of order, and an old line must not resurrect or expire anything. A failure exactly
 * `findtime` older than the newest one no longer counts (same rule as the memory store).
 */
export const ADD_FAILURE = `
local key = KEYS[1]
redis.call('ZADD', key, ARGV[1], ARGV[2])
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
local cutoff = tonumber(newest[2]) - tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', cutoff))
local members = redis.call('ZRANGE', key, 0, -1)
local sum = 0
for i = 1, #members do
  sum = sum + (tonumber(string.match(members[i], ':([^:]*)$')) or 0)
end
if sum >= tonumber(ARGV[4]) then
  redis.call('DEL', key)
  return {string.format('%.17g', sum), 1}
end
redis.call('PEXPIRE', key, ARGV[5])
return {string.format('%.17g', sum), 0}
`;

/**
 * Stores a decision merged with the one already there, records it in the ban history and
 * announces it, in one step. The merge rules are `mergeDecision`'s (src/stores/merge-decision.ts;
 * the integration test compares the two case by case):
 * - a decision that had expired when the incoming one started is replaced outright;
 * - an enforced decision is never replaced by a dry-run one;
 * - a dry-run decision is replaced outright by an enforced one;
 * - otherwise the incoming decision wins, with the later expiry (null = permanent wins) and the
 *   higher ban count.
 *
 * The script never re-encodes JSON (cjson would reorder keys, turn `[]` into `{}` and print
 * numbers with 14 digits): the caller sends the incoming decision as a JSON object without its
 * closing brace and without `expiresAt`/`banCount`, and the script appends those two fields.
 *
 * A decision whose expiry moves earlier bumps the removals counter (see `loadDecisions`).
 *
 * KEYS: bans hash, expiry zset, history zset of this target, history index zset, removals counter.
 * ARGV: target, JSON head, expiresAt ('null' = permanent), banCount, dryRun ('1'/'0'),
 * history member ('' = do not record), startedAt, history TTL ms, channel, message head.
 * Returns the decision as stored (JSON).
 */
export const PUT_DECISION = `
local target = ARGV[1]
local expiresAt = ARGV[3]
local banCount = ARGV[4]
local keepOld = false
local old = redis.call('HGET', KEYS[1], target)
if old then
  local o = cjson.decode(old)
  local oldDry = o.dryRun == true
  local newDry = ARGV[5] == '1'
  if o.expiresAt ~= cjson.null and tonumber(o.expiresAt) <= tonumber(ARGV[7]) then
    -- it had expired when the new one started: replaced outright, nothing carried over
  elseif newDry and not oldDry then
    keepOld = true
  elseif oldDry == newDry then
    if o.expiresAt == cjson.null or expiresAt == 'null' then
      expiresAt = 'null'
    elseif tonumber(o.expiresAt) > tonumber(expiresAt) then
      expiresAt = string.format('%.17g', o.expiresAt)
    end
    local oldCount = tonumber(o.banCount) or 0
    if oldCount > tonumber(banCount) then
      banCount = string.format('%.17g', oldCount)
    end
  end
end
local stored = old
if not keepOld then
  stored = ARGV[2] .. ',"expiresAt":' .. expiresAt .. ',"banCount":' .. banCount .. '}'
  redis.call('HSET', KEYS[1], target, stored)
  local score = expiresAt == 'null' and '+inf' or expiresAt
  local previous = redis.call('ZSCORE', KEYS[2], target)
  if previous and score ~= '+inf' and (previous == 'inf' or tonumber(previous) > tonumber(score)) then
    redis.call('INCR', KEYS[5])
  end
  redis.call('ZADD', KEYS[2], score, target)
end
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
  local oldest = redis.call('ZSCORE', KEYS[4], target)
  if not oldest or tonumber(oldest) > tonumber(ARGV[7]) then
    redis.call('ZADD', KEYS[4], ARGV[7], target)
  end
end
redis.call('PUBLISH', ARGV[9], ARGV[10] .. stored .. '}')
return stored
`;

/**
 * Removes a decision, bumps the removals counter (see `loadDecisions`) and announces the unban
 * (also when there was none here: another instance may still hold it in its ban table).
 *
 * KEYS: bans hash, expiry zset, removals counter. ARGV: target, channel, message.
 * Returns the removed JSON or nil.
 */
export const DELETE_DECISION = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('INCR', KEYS[3])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return old
`;

/**
 * Deletes at most `limit` decisions that expired at or before `nowMs`, so one call never blocks
 * the server for long; the caller loops while a full batch comes back.
 *
 * KEYS: bans hash, expiry zset. ARGV: nowMs, limit. Returns how many were deleted.
 */
export const PURGE_DECISIONS = `
local targets = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #targets > 0 then
  redis.call('HDEL', KEYS[1], unpack(targets))
  redis.call('ZREM', KEYS[2], unpack(targets))
end
return #targets
`;

/**
 * Drops history entries older than `beforeMs` from a batch of targets and re-scores each target
 * in the history index by its oldest remaining entry (or removes it when none is left). Recomputed
 * from the data itself, so a concurrent ban or an expired history key cannot leave it wrong.
 *
 * KEYS: history index, then one history zset per target. ARGV: beforeMs, then the targets in the
 * same order. Returns the number of entries removed.
 */
export const PURGE_HISTORY = `
local removed = 0
for i = 2, #KEYS do
  removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[1])
  local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if #oldest == 0 then
    redis.call('ZREM', KEYS[1], ARGV[i])
  else
    redis.call('ZADD', KEYS[1], oldest[2], ARGV[i])
  end
end
return removed
`;
