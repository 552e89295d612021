-- File: store/redis/scripts/debt_meter.lua
--
-- token_bucket, gcra and leaky_bucket: core::decide_debt (src/core/debt_meter.cc), step for step.
--   ARGV[4] = Policy::interval() (ticks of debt per unit of cost), ARGV[5] = ticks_per_us() (0: the
--   bucket never refills).
--   KEYS[1] = "<i7i7": debt in ticks, stamp in microseconds. Absent = fresh (debt 0, no past).

local DEBT_FORMAT, DEBT_SIZE = "<i7i7", 14

-- decide_debt(): the whole script for one of the three; `reports_delay` for leaky_bucket.
local function decide_debt(reports_delay)
  local key = KEYS[1]
  local cost = arg_integer(2, "cost")
  local limit = arg_positive(3, "limit", MAX_LIMIT)
  local interval = arg_positive(4, "interval", 9007199254740991)
  local per_us = arg_integer(5, "ticks_per_us")
  -- Policy keeps this near 2^52; below 2^53 every sum compared with it still decides exactly.
  local tolerance = limit * interval
  if tolerance > 9007199254740991 then
    fail("limit * interval must stay below 2^53")
  end
  local now = now_us()

  local stored = redis.call("GET", key)
  local debt, at = unpack_state(DEBT_FORMAT, DEBT_SIZE, stored)
  if not debt then
    debt, at = 0, 0
  end

  -- Bring the debt up to now. A clock behind the stamp drains nothing; debt written under another
  -- policy is clamped into this one's range.
  debt = math.min(math.max(debt, 0), tolerance)
  if now > at then
    if per_us > 0 and debt > 0 then
      -- The product may exceed 2^53 (and round), but only when it is above debt < 2^53; below
      -- debt it is exact. So the comparison decides exactly, as the C++ overflow check does.
      local drained = (now - at) * per_us
      if drained >= debt then
        debt = 0
      else
        debt = debt - drained
      end
    end
    at = now
  end
  local lag = at - now

  -- Time from now until the debt has drained to `target`.
  local function wait_until(target)
    if debt <= target then
      return 0
    end
    if per_us == 0 then
      return NEVER
    end
    return lag + ceil_div(debt - target, per_us)
  end

  local allowed, reason, retry_after, delay = false, REASON_NONE, 0, 0
  if cost > limit then
    reason, retry_after = REASON_COST_EXCEEDS_CAPACITY, NEVER
  else
    local need = cost * interval
    if debt + need <= tolerance then
      allowed = true
      if reports_delay then
        delay = wait_until(0)
      end
      debt = debt + need
    else
      reason, retry_after = REASON_LIMITED, wait_until(tolerance - need)
    end
  end
  local remaining = floor_div(tolerance - debt, interval)
  local reset_after = wait_until(0)
  -- A drained meter is forgotten entirely, stamp included.
  store(key, stored, debt == 0, debt > 0 and struct.pack(DEBT_FORMAT, debt, at), now, reset_after)
  return reply(allowed, reason, remaining, reset_after, retry_after, delay)
end
