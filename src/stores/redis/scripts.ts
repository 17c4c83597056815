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
 * `put()`, shared by the two scripts below: stores a decision merged with the one already there
 * and records it in the ban history. The merge rules are `mergeDecision`'s (src/stores/merge-decision.ts;
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
 */
const PUT_ONE = `
local function put(bans, exp, hist, index, removals, target, head, expiresAt, banCount, dry, member, startedAt, ttl)
  local keepOld = false
  local old = redis.call('HGET', bans, target)
  if old then
    local o = cjson.decode(old)
    local oldDry = o.dryRun == true
    local newDry = dry == '1'
    if o.expiresAt ~= cjson.null and tonumber(o.expiresAt) <= tonumber(startedAt) then
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
    stored = head .. ',"expiresAt":' .. expiresAt .. ',"banCount":' .. banCount .. '}'
    redis.call('HSET', bans, target, stored)
    local score = expiresAt == 'null' and '+inf' or expiresAt
    local previous = redis.call('ZSCORE', exp, target)
    if previous and score ~= '+inf' and (previous == 'inf' or tonumber(previous) > tonumber(score)) then
      redis.call('INCR', removals)
    end
    redis.call('ZADD', exp, score, target)
  end
  if member ~= '' then
    redis.call('ZADD', hist, startedAt, member)
    redis.call('PEXPIRE', hist, ttl)
    local oldest = redis.call('ZSCORE', index, target)
    if not oldest or tonumber(oldest) > tonumber(startedAt) then
      redis.call('ZADD', index, startedAt, target)
    end
  end
  return stored
end
`;

/**
 * Stores one decision (see `put()` above) and announces it, in one step.
 *
 * KEYS: bans hash, expiry zset, history zset of this target, history index zset, removals counter.
 * ARGV: target, JSON head, expiresAt ('null' = permanent), banCount, dryRun ('1'/'0'),
 * history member ('' = do not record), startedAt, history TTL ms, channel, message head.
 * Returns the decision as stored (JSON).
 */
export const PUT_DECISION = `${PUT_ONE}
local stored = put(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  ARGV[5], ARGV[6], ARGV[7], ARGV[8])
redis.call('PUBLISH', ARGV[9], ARGV[10] .. stored .. '}')
return stored
`;

/**
 * `PUT_DECISION` for a chunk of decisions, in order (a target given twice is merged with itself),
 * announced in one message that lists every stored decision.
 *
 * KEYS: bans hash, expiry zset, history index zset, removals counter, then the history zset of
 * each decision's target. ARGV: channel, message head (the message up to the opening `[` of its
 * list), history TTL ms, then seven values per decision: target, JSON head, expiresAt, banCount,
 * dryRun, history member, startedAt (as for `PUT_DECISION`).
 * Returns the stored decisions (JSON), in order.
 */
export const PUT_DECISIONS = `${PUT_ONE}
local out = {}
for i = 1, #KEYS - 4 do
  local a = 3 + (i - 1) * 7
  out[i] = put(KEYS[1], KEYS[2], KEYS[4 + i], KEYS[3], KEYS[4], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
    ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[3])
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. table.concat(out, ',') .. ']}')
return out
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
 * `DELETE_DECISION` for a chunk of targets, announced in one message (built by the caller, it
 * lists every target).
 *
 * KEYS: bans hash, expiry zset, removals counter. ARGV: channel, message, then the targets.
 * Returns, per target, the removed JSON or nil.
 */
export const DELETE_DECISIONS = `
local out = {}
local removed = false
for i = 3, #ARGV do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    removed = true
  end
  -- false, not nil: a nil would end the array here
  out[i - 2] = old or false
end
if removed then
  redis.call('INCR', KEYS[3])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return out
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
