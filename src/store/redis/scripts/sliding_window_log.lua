-- File: store/redis/scripts/sliding_window_log.lua
--
-- sliding_window_log: core::decide_sliding_log (src/core/sliding_window_log.cc), step for step.
--   A check's parameters (ARGV[4+4i], ARGV[5+4i]) = window in microseconds, unused ("0").
--   Its two keys:
--   KEYS[2i+1] = a sorted set of the entries: score = the entry's time in microseconds, member =
--                "<i7I4" (time, count); entries admitted in the same microsecond are merged.
--   KEYS[2i+2] = KEYS[2i+1] .. ":m" (same hash tag, same slot): "<I4i7" (total of the counts, at
--                most kMaxLogLimit; latest moment the log has seen), 11 bytes (see the end of
--                decide()).
-- Both absent = an empty log. Both keys share one TTL. A sorted set without its meta key (one of
-- the two evicted) is dropped; a meta key without entries is an empty log.
--
-- Per check: O(log n) plus the entries that expire (each expires once) and, when denied, the
-- oldest entries walked to find retry_after. At most `limit` entries, as every entry holds at
-- least one unit of cost.

local ENTRY_FORMAT, ENTRY_SIZE = "<i7I4", 11
local META_FORMAT, META_SIZE = "<I4i7", 11

local function parameters(at)
  return arg_positive(at, "window_us", 9007199254740991), 0
end

local function decide(key, meta_key, now, cost, limit, window)
  -- entry(): the time and count a member holds.
  local function entry(member)
    local at, count = unpack_state(ENTRY_FORMAT, ENTRY_SIZE, member)
    if not at then
      fail("malformed sliding_window_log entry in " .. key)
    end
    return at, count
  end

  local stored = redis.call("GET", meta_key)
  local total, latest = unpack_state(META_FORMAT, META_SIZE, stored)
  if not total or total <= 0 then
    total, latest = 0, 0
    redis.call("DEL", key)  -- entries left without their meta key no longer count
  end

  -- Time never runs backwards within one log: a clock behind the latest moment the log has seen
  -- is taken as that moment, so entries stay ordered and none comes back after it expired.
  local at = total == 0 and now or math.max(now, latest)

  -- Entries stop counting `window` after they were admitted: expire those at or before
  -- at - window.
  if total > 0 then
    local cutoff = fmt(at - window)
    local expired = redis.call("ZRANGEBYSCORE", key, "-inf", cutoff)
    if #expired > 0 then
      for _, member in ipairs(expired) do
        local _, count = entry(member)
        total = total - count
      end
      redis.call("ZREMRANGEBYSCORE", key, "-inf", cutoff)
    end
  end

  -- The newest entry: merged into when admitting in its microsecond, and what reset_after waits
  -- for.
  local newest_member, newest_at, newest_count
  if total > 0 then
    newest_member = redis.call("ZRANGE", key, -1, -1)[1]
    if newest_member then
      newest_at, newest_count = entry(newest_member)
    else
      total = 0  -- the entries were evicted without their meta key: an empty log
    end
  end

  -- Time from now until a request of `n` (<= limit) fits: walk the oldest entries until enough
  -- has expired, fetching them in growing batches.
  local function wait_for(n)
    if total + n <= limit then
      return 0
    end
    local left, first, batch = total, 0, 16
    while true do
      local members = redis.call("ZRANGE", key, first, first + batch - 1)
      if #members == 0 then
        return NEVER  -- unreachable: once every entry expired, left == 0 and n <= limit
      end
      for _, member in ipairs(members) do
        local entry_at, count = entry(member)
        left = left - count
        if left + n <= limit then
          return entry_at + window - now
        end
      end
      first, batch = first + #members, batch * 2
    end
  end

  local allowed, reason, retry_after = false, REASON_NONE, 0
  if cost > limit then
    reason, retry_after = REASON_COST_EXCEEDS_CAPACITY, NEVER
  elseif total + cost <= limit then
    allowed = true
    if cost > 0 then
      if newest_at == at then
        redis.call("ZREM", key, newest_member)
        newest_count = newest_count + cost
      else
        newest_at, newest_count = at, cost
      end
      redis.call("ZADD", key, fmt(at), struct.pack(ENTRY_FORMAT, at, newest_count))
      total = total + cost
    end
  else
    reason, retry_after = REASON_LIMITED, wait_for(cost)
  end
  -- A total carried from a policy with a higher limit may exceed this one's: nothing remains.
  local remaining = math.max(0, limit - total)
  -- Fully available once the newest entry stops counting.
  local reset_after = total == 0 and 0 or newest_at + window - now

  -- Redis 7.0 recycles the objects of redis.call() arguments, per position (script_lua.c), and
  -- SET keeps the object of its value: a longer third argument left behind here (a score, a time,
  -- a key name) would become the value of the next SET, the next check's in this call or any later
  -- script's, and cost that key 16 bytes more. So every check ends with the SET, whose value (11
  -- bytes) fits, and so takes away, whatever third argument came before it (at least the 13
  -- digits of PEXPIREAT's time), or with calls of at most two arguments.
  -- RedisScripts.MemoryUsagePerKey measures every path, alone and within a call of many checks.
  if total == 0 then
    if stored then
      redis.call("DEL", key)
      redis.call("DEL", meta_key)
    end
  else
    local option, expires = expiry(now, reset_after)
    redis.call(option == "PX" and "PEXPIRE" or "PEXPIREAT", key, expires)
    redis.call("SET", meta_key, struct.pack(META_FORMAT, total, at), option, expires)
  end
  return allowed, reason, remaining, reset_after, retry_after, 0
end

return decide_checks(2, parameters, decide)
