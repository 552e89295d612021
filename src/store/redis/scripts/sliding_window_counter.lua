-- File: store/redis/scripts/sliding_window_counter.lua
--
-- sliding_window_counter: core::decide_sliding_counter (src/core/sliding_window_counter.cc), step
-- for step, in the same 16-bit fixed point.
--   A check's parameters (ARGV[4+4i], ARGV[5+4i]) = window in microseconds,
--   Policy::weight_shift().
--   Its key (KEYS[i+1]) = "<i7I4I4": the start of the current window (microseconds), its count,
--   the previous window's count. Absent = fresh.

local COUNTER_FORMAT, COUNTER_SIZE = "<i7I4I4", 15
local WEIGHT_ONE = 65536

local function parameters(at)
  local window = arg_positive(at, "window_us", 9007199254740991)
  local shift = arg_integer(at + 1, "weight_shift")
  if shift > 16 then
    fail("ARGV[" .. at + 1 .. "] (weight_shift) is out of range")
  end
  return window, shift
end

local function decide(key, _, now, cost, limit, window, shift)
  -- x >> shift and x << shift, for x >= 0 (a power of two divides and multiplies exactly).
  local scale = 2 ^ shift
  local scaled_window = floor_div(window, scale)

  -- w(e) = ceil((W - e) * 65536 / W) on the shifted offset and window (core's
  -- sliding_counter_weight).
  local function weight(offset)
    local scaled_offset = math.min(floor_div(offset, scale), scaled_window)
    return ceil_div((scaled_window - scaled_offset) * WEIGHT_ONE, scaled_window)
  end

  -- The earliest time (as a wait from now) at which a request of `n` passes, given the counts of
  -- the window starting at `window_start` and no further admissions: in this window, the next or
  -- the one after.
  local function earliest_pass(window_start, previous, current, n)
    if n > limit then
      return NEVER
    end
    local prev, cur = previous, current
    for step = 0, 2 do
      local start = window_start + step * window
      local from = math.max(now, start)
      if cur + n <= limit then
        if prev == 0 then
          return from - now
        end
        local budget = (limit - cur - n) * WEIGHT_ONE
        local max_weight = floor_div(budget, prev)
        if max_weight >= WEIGHT_ONE then
          return from - now
        end
        -- Smallest scaled offset with w <= max_weight: e >= W - floor(max_weight * W / 65536).
        local scaled_offset = scaled_window - floor_div(max_weight * scaled_window, WEIGHT_ONE)
        local offset = scaled_offset * scale
        if offset < window then
          return math.max(from, start + offset) - now
        end
      end
      prev, cur = cur, 0
    end
    return NEVER
  end

  -- Roll the windows forward to now. A clock behind the stored window keeps the stored one; a
  -- start off this policy's boundaries (another window length) has its counts carried into this
  -- window.
  local now_start = floor_div(now, window) * window
  local stored = redis.call("GET", key)
  local start, current, previous = unpack_state(COUNTER_FORMAT, COUNTER_SIZE, stored)
  if not start then
    start, current, previous = 0, 0, 0
  end
  if (previous == 0 and current == 0) or not multiple_of(start, window) then
    start = now_start
  elseif now_start > start then
    previous = (now_start == start + window) and current or 0
    current = 0
    start = now_start
  end
  local offset = math.max(0, now - start)
  local function estimate()
    return previous * weight(offset) + current * WEIGHT_ONE
  end
  local ceiling = limit * WEIGHT_ONE

  local allowed, reason, retry_after = false, REASON_NONE, 0
  if cost > limit then
    reason, retry_after = REASON_COST_EXCEEDS_CAPACITY, NEVER
  elseif estimate() + cost * WEIGHT_ONE <= ceiling then
    allowed = true
    current = current + cost
  else
    reason, retry_after = REASON_LIMITED, earliest_pass(start, previous, current, cost)
  end
  local used = estimate()
  local remaining = used >= ceiling and 0 or floor_div(ceiling - used, WEIGHT_ONE)
  local reset_after = earliest_pass(start, previous, current, limit)
  local fresh = previous == 0 and current == 0
  store(key, stored, fresh, not fresh and struct.pack(COUNTER_FORMAT, start, current, previous),
        now, reset_after)
  return allowed, reason, remaining, reset_after, retry_after, 0
end

return decide_checks(1, parameters, decide)
