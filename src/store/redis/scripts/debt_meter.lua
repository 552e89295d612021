-- File: store/redis/scripts/debt_meter.lua
--
-- token_bucket, gcra and leaky_bucket: core::decide_debt (src/core/debt_meter.cc), step for step.
--   A check's parameters (ARGV[4+4i], ARGV[5+4i]) = Policy::interval() (ticks of debt per unit of
--   cost), ticks_per_us() (0: the bucket never refills).
--   Its key (KEYS[i+1]) = 12 bytes "<I3I3I6": the debt in ticks and the stamp modulo 2^46
--   microseconds. Absent = fresh (debt 0, no past).
--
-- 12 bytes is what keeps a key at the smaller Redis allocation (see prelude.lua): 96 bits hold
--   - the debt, below 2^50: Policy keeps limit * interval < 2^50;
--   - the stamp modulo 2^46 (~814 days), read back as the time nearest to now with that residue,
--     which is exact while -2^45 <= now - stamp < 2^45 (2^45 us is ~407 days). A key that still
--     exists is always in that range: it expires (PXAT) once its debt has drained, at most 365 days
--     and a minute after its stamp (Policy's kMaxWindow, plus rounding the interval; asserted in
--     policy_test.cc), or 365 days after its last use for a bucket that never refills. Going the
--     other way, a clock stepped back by up to 407 days is still read as behind the stamp (drains
--     nothing); a step back further than that would be read as time passed.
-- Packed as d_lo = debt mod 2^24, s_lo = stamp mod 2^24, then d_hi * 2^22 + s_hi (< 2^48), every
-- part an exact double.
--
-- Test-time scripts run on simulated time, which may leap years ahead while a key lives its real
-- TTL (at least TEST_TTL_FLOOR_MS): a key that production would have expired long ago could be
-- read with a stamp 2^46 off. So the test-time variant appends the millisecond at which the
-- production variant's key would expire ("<i7", simulated time) and reads a key past it as
-- absent, as Redis would; the 12 bytes before it are the production encoding, decoded the same way.

local DEBT_FORMAT, DEBT_SIZE = "<I3I3I6", 12
local TEST_EXPIRY_FORMAT, TEST_EXPIRY_SIZE = "<i7", 7
local MAX_TOLERANCE = 2 ^ 50
local STAMP_MODULUS, STAMP_HALF = 2 ^ 46, 2 ^ 45
local LOW, HIGH_STAMP = 2 ^ 24, 2 ^ 22

-- pack_debt(): debt (0 < debt < 2^50) and stamp as the 12 bytes above.
local function pack_debt(debt, stamp)
  local residue = stamp - floor_div(stamp, STAMP_MODULUS) * STAMP_MODULUS
  local debt_high, stamp_high = floor_div(debt, LOW), floor_div(residue, LOW)
  return struct.pack(DEBT_FORMAT, debt - debt_high * LOW, residue - stamp_high * LOW,
                     debt_high * HIGH_STAMP + stamp_high)
end

-- unpack_debt(): the debt and the stamp in `value` (12 bytes), the stamp taken nearest to `now`.
local function unpack_debt(value, now)
  local debt_low, stamp_low, high = struct.unpack(DEBT_FORMAT, value)
  local debt_high = floor_div(high, HIGH_STAMP)
  local residue = (high - debt_high * HIGH_STAMP) * LOW + stamp_low
  local behind = now - residue
  behind = behind - floor_div(behind, STAMP_MODULUS) * STAMP_MODULUS
  if behind >= STAMP_HALF then
    behind = behind - STAMP_MODULUS
  end
  return debt_high * LOW + debt_low, now - behind
end

-- load_debt(): the state in `stored` (a GET reply) at `now`, or nil for a fresh key.
local function load_debt(stored, now)
  if not stored then
    return nil
  end
  if FG_TEST_TIME then
    if #stored ~= DEBT_SIZE + TEST_EXPIRY_SIZE then
      return nil
    end
    local expires_ms = struct.unpack(TEST_EXPIRY_FORMAT, string.sub(stored, DEBT_SIZE + 1))
    if floor_div(now, 1000) > expires_ms then
      return nil  -- production would have expired it (Redis: gone once now > PXAT)
    end
    stored = string.sub(stored, 1, DEBT_SIZE)
  end
  if #stored ~= DEBT_SIZE then
    return nil
  end
  return unpack_debt(stored, now)
end

-- debt_value(): what store() writes for a debt > 0 at `now`, reset_us before it drains.
local function debt_value(debt, stamp, now, reset_us)
  local value = pack_debt(debt, stamp)
  if FG_TEST_TIME then
    value = value .. struct.pack(TEST_EXPIRY_FORMAT, production_expiry_ms(now, reset_us))
  end
  return value
end

-- debt_parameters(): a check's interval (ARGV[at]) and ticks_per_us (ARGV[at + 1]).
local function debt_parameters(at, limit)
  local interval = arg_positive(at, "interval", 9007199254740991)
  local per_us = arg_integer(at + 1, "ticks_per_us")
  -- Policy keeps this below 2^50: the packed debt's width, and every sum compared with it exact.
  if limit * interval >= MAX_TOLERANCE then
    fail("limit * interval must stay below 2^50 (ARGV[" .. at .. "])")
  end
  return interval, per_us
end

-- decide_debt(): one check of one of the three; `reports_delay` for leaky_bucket.
local function decide_debt(key, now, cost, limit, interval, per_us, reports_delay)
  local tolerance = limit * interval
  local stored = redis.call("GET", key)
  local debt, at = load_debt(stored, now)
  if not debt then
    debt, at = 0, 0
  end

  -- Bring the debt up to now. A clock behind the stamp drains nothing; debt written under another
  -- policy is clamped into this one's range.
  debt = math.min(math.max(debt, 0), tolerance)
  if now > at then
    if per_us > 0 and debt > 0 then
      -- The product may exceed 2^53 (and round), but only when it is above debt < 2^50; below
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
  store(key, stored, debt == 0, debt > 0 and debt_value(debt, at, now, reset_after), now,
        reset_after)
  return allowed, reason, remaining, reset_after, retry_after, delay
end
