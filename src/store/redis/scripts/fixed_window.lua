-- File: store/redis/scripts/fixed_window.lua
--
-- fixed_window: core::decide_fixed_window (src/core/fixed_window.cc), step for step.
--   A check's parameters (ARGV[4+4i], ARGV[5+4i]) = window in microseconds, unused ("0").
--   Its key (KEYS[i+1]) = "<i7I4": the start of the window the count belongs to (microseconds),
--   the count. Absent = fresh.

local FIXED_WINDOW_FORMAT, FIXED_WINDOW_SIZE = "<i7I4", 11

local function parameters(at)
  return arg_positive(at, "window_us", 9007199254740991), 0
end

local function decide(key, _, now, cost, limit, window)
  -- A clock that stepped back into an earlier window keeps counting in the newer one. A start off
  -- this policy's boundaries was written under another window length: its count is carried into
  -- the current window.
  local start = floor_div(now, window) * window
  local count = 0
  local stored = redis.call("GET", key)
  local stored_start, stored_count = unpack_state(FIXED_WINDOW_FORMAT, FIXED_WINDOW_SIZE, stored)
  if stored_start and stored_count > 0 then
    if not multiple_of(stored_start, window) then
      count = stored_count
    elseif stored_start >= start then
      start, count = stored_start, stored_count
    end
  end
  local until_end = start + window - now

  local allowed, reason, retry_after = false, REASON_NONE, 0
  if cost > limit then
    reason, retry_after = REASON_COST_EXCEEDS_CAPACITY, NEVER
  elseif count + cost <= limit then
    allowed = true
    count = count + cost
  else
    reason, retry_after = REASON_LIMITED, until_end
  end
  -- A count carried from a policy with a higher limit may exceed this one's: nothing remains.
  local remaining = math.max(0, limit - count)
  local reset_after = count > 0 and until_end or 0
  store(key, stored, count == 0, count > 0 and struct.pack(FIXED_WINDOW_FORMAT, start, count), now,
        reset_after)
  return allowed, reason, remaining, reset_after, retry_after, 0
end

return decide_checks(1, parameters, decide)
