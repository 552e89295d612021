-- File: store/redis/scripts/prelude.lua
--
-- The first chunk of every floodgate script: argument parsing, time, exact integer division,
-- state packing, TTLs and the batch driver (decide_checks). embed.cmake builds each script as
--
--   local FG_TEST_TIME = true|false   -- one line; the two variants differ only here
--   prelude.lua [debt_meter.lua] <algorithm>.lua
--
-- where <algorithm>.lua defines the algorithm's parameters() and decide() and ends with
-- `return decide_checks(keys_per_check, parameters, decide)`.
--
-- Contract (src/store/redis/scripts.h; the Redis client depends on it): one call decides n >= 1
-- checks of one algorithm, in order, at one time. With k = keys per check (2 for
-- sliding_window_log, else 1):
--   KEYS[i*k+1]  check i's state key (namespaced and hash-tagged by the client); the log's
--                KEYS[i*k+2] is its meta key
--   ARGV[1]      now in microseconds since the epoch, or "": honoured only when FG_TEST_TIME;
--                otherwise now is Redis TIME (read once per call)
--   ARGV[2+4i]   check i's cost (integer >= 0)     ARGV[3+4i] its limit (Policy::limit())
--   ARGV[4+4i]   ARGV[5+4i]: its algorithm parameters (see each algorithm's file)
--   reply        6n integers, check i's at 6i+1..6i+6: {allowed 1|0, reason 0 none|1 limited|2
--                cost_exceeds_capacity, remaining, reset_after_us, retry_after_us, delay_us}, -1
--                standing for never
-- A check sees the writes of the checks before it in the same call (the same key may appear
-- several times), so a call decides exactly as its checks sent one by one at the same time.
-- Every argument is validated before anything is read or written: a malformed call has no effect.
--
-- The node-wide form (Redis Cluster): no KEYS; the keys follow the arguments, check i's at
-- ARGV[2+4n+k*i] (and +1). A cluster refuses declared keys of several slots in one call, but a
-- script without flags may touch undeclared keys of every slot its node serves, so one call
-- carries a master's share of a batch. Each check runs under pcall: a key the node does not serve
-- (moved away, half migrated, the cluster down) fails its first access, before the check wrote
-- anything (decide() reads each key before writing it; a two-key check is probed first), and the
-- check answers {-1, 0, 0, 0, 0, 0}, -2 for a cluster that is down: the client sends that check
-- again alone, its keys declared, where MOVED and ASK lead it. Any other error is raised.
--
-- Exactness. Redis 7.0 runs Lua 5.1, whose only number is an IEEE double. The C++ algorithms
-- (src/core/) keep every value below 2^53, so each step here is exact as long as
--   - no number is formatted by tostring() or `..` (they use "%.14g" and drop digits of a
--     microsecond timestamp): numbers go to Redis through fmt() or struct.pack only;
--   - no division is a bare math.floor(a / b) (the quotient of two exact doubles is rounded and
--     can land on the next integer): floor_div() and ceil_div() correct it.

local NEVER = -1
local REASON_NONE, REASON_LIMITED, REASON_COST_EXCEEDS_CAPACITY = 0, 1, 2
-- Policy's kMaxLimit: counts are packed in 4 bytes.
local MAX_LIMIT = 4294967295
-- A bucket that never refills is never fresh again; its key is kept this long after its last use.
local NEVER_TTL_MS = 365 * 24 * 3600 * 1000
-- Test-time scripts run on simulated time while Redis expires keys on its own clock. A TTL is at
-- least this long there, so no key expires in real time while a test is still simulating it.
local TEST_TTL_FLOOR_MS = 60 * 1000

local function fail(message)
  error({err = "ERR floodgate: " .. message})
end

-- arg_integer(): ARGV[i] as a number: a whole number (>= 0 unless `signed`) below 2^53, or an
-- error reply. The common case is decided by tonumber() alone (so "1e3" or " 5" pass as the
-- numbers they are): a pattern match on every argument cost ~0.5 us of a check's ~5.5 us in
-- Redis (redis-benchmark, 12 checks a call). The pattern decides the rest and names the argument.
local function arg_integer(i, name, signed)
  local s = ARGV[i]
  local n = tonumber(s)
  if n and n >= 0 and n % 1 == 0 and n < 9007199254740992 then
    return n
  end
  if type(s) ~= "string" or not string.find(s, signed and "^%-?%d+$" or "^%d+$") then
    fail("ARGV[" .. i .. "] (" .. name .. ") must be a decimal integer")
  end
  return tonumber(s)
end

-- arg_positive(): as arg_integer(), at least 1 and at most `max`.
local function arg_positive(i, name, max)
  local n = arg_integer(i, name)
  if n < 1 or n > max then
    fail("ARGV[" .. i .. "] (" .. name .. ") is out of range")
  end
  return n
end

-- now_us(): Redis TIME in microseconds; a test-time script takes ARGV[1] instead when given.
local function now_us()
  if FG_TEST_TIME and ARGV[1] ~= nil and ARGV[1] ~= "" then
    return arg_integer(1, "now", true)
  end
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- floor_div(): a / b rounded towards minus infinity, exact for |a| < 2^53, 0 < b < 2^53 (the
-- rounded quotient is off by at most one; the products compared are exact or beyond 2^53 > |a|).
local function floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

-- ceil_div(): a / b rounded up; core::ceil_div for a >= 0.
local function ceil_div(a, b)
  return -floor_div(-a, b)
end

-- multiple_of(): whether b divides a (C++ `a % b == 0`, whatever the sign of a).
local function multiple_of(a, b)
  return floor_div(a, b) * b == a
end

-- fmt(): an integral number as a decimal string, every digit kept.
local function fmt(n)
  return string.format("%.0f", n)
end

-- States are packed little-endian with struct.pack: "i7" holds a time in microseconds (+-1,142
-- years), "I4" a count or a log's total (<= MAX_LIMIT); a debt meter packs its debt and stamp into
-- 12 bytes (debt_meter.lua). Binary is the smallest exact form, and 12 bytes is the line that
-- matters: in Redis 7.0 a string value of up to 12 bytes shares one allocation with its object
-- header, 13 to 28 bytes take the next size, 16 bytes more. MEMORY USAGE of a key named
-- "fg:gcra:{user:12345}" is 88 bytes with its 12-byte state (104 with the former 14), and the same
-- 88 for fixed_window (11 bytes); decimal text would take 104 to 120. That holds while no script
-- leaves a longer argument behind for SET to recycle (see the end of sliding_window_log.lua).
-- unpack_state(): the numbers in `value`, or nil when it is missing or not of `format`'s size.
local function unpack_state(format, size, value)
  if not value or #value ~= size then
    return nil
  end
  return struct.unpack(format, value)
end

-- production_expiry_ms(): the millisecond after which the production variant's key, written at
-- `now` (microseconds) with `reset_us` to go, is gone: PXAT that millisecond, rounded up, or PX
-- 365 days for never. Redis drops a key once its clock is past it (now_ms > expiry).
local function production_expiry_ms(now, reset_us)
  if reset_us == NEVER then
    return floor_div(now, 1000) + NEVER_TTL_MS
  end
  return ceil_div(now + reset_us, 1000)
end

-- expiry(): the SET/PEXPIRE option and value that expire a key when its state becomes fresh,
-- `reset_us` after `now`: PXAT the exact millisecond (rounded up), PX 365 days for never, and for
-- test-time scripts PX of at least TEST_TTL_FLOOR_MS.
local function expiry(now, reset_us)
  if reset_us == NEVER then
    return "PX", fmt(NEVER_TTL_MS)
  end
  if FG_TEST_TIME then
    return "PX", fmt(math.max(ceil_div(reset_us, 1000), TEST_TTL_FLOOR_MS))
  end
  return "PXAT", fmt(production_expiry_ms(now, reset_us))
end

-- store(): writes a state that is not fresh (with its TTL), or forgets a fresh one.
local function store(key, existed, fresh, value, now, reset_us)
  if fresh then
    if existed then
      redis.call("DEL", key)
    end
  else
    local option, at = expiry(now, reset_us)
    redis.call("SET", key, value, option, at)
  end
end

-- decide_here(): decide() for one check of a node-wide call, its two keys probed first (one read
-- of both: it fails unless the node serves both, before anything is written).
local function decide_here(decide, two_keys, key, meta_key, now, cost, limit, p4, p5)
  if two_keys then
    redis.call("EXISTS", key, meta_key)
  end
  return decide(key, meta_key, now, cost, limit, p4, p5)
end

-- decide_checks(): the whole script. Validates the shape of the call and every check's arguments
-- (cost, limit, then parameters(i, limit) for ARGV[i], ARGV[i + 1], which returns the two
-- parameters as numbers or fails), reads the time once, then runs
-- decide(key, meta_key, now, cost, limit, p4, p5) for each check in order; decide returns
-- allowed (a boolean), reason, remaining, reset_after, retry_after, delay.
local function decide_checks(keys_per_check, parameters, decide)
  local key_count, arg_count = #KEYS, #ARGV
  local node_wide = key_count == 0
  local n, keys, first_key
  if node_wide then
    n = math.floor((arg_count - 1) / (4 + keys_per_check))
    if n < 1 or arg_count ~= 1 + (4 + keys_per_check) * n then
      fail("a call without KEYS must hold the time, then 4 arguments per check, then " ..
           keys_per_check .. " key(s) per check: got " .. arg_count .. " arguments")
    end
    keys, first_key = ARGV, 2 + 4 * n
  else
    -- key_count >= 1 here: only a two-key algorithm can get a count that is not a whole number
    -- of checks.
    n = math.floor(key_count / keys_per_check)
    if n < 1 or n * keys_per_check ~= key_count then
      fail("sliding_window_log takes two keys per check, the log and its meta key: got " ..
           key_count)
    end
    if arg_count ~= 1 + 4 * n then
      fail("ARGV must hold the time and 4 arguments per check: " .. 1 + 4 * n .. " for " .. n ..
           " checks, not " .. arg_count)
    end
    keys, first_key = KEYS, 1
  end
  -- Validate everything before the first write: a malformed call leaves every key as it was.
  local args = {}
  for i = 0, n - 1 do
    local at = 2 + 4 * i
    local cost = arg_integer(at, "cost")
    local limit = arg_positive(at + 1, "limit", MAX_LIMIT)
    local p4, p5 = parameters(at + 2, limit)
    args[4 * i + 1], args[4 * i + 2], args[4 * i + 3], args[4 * i + 4] = cost, limit, p4, p5
  end
  local now = now_us()

  local out = {}
  for i = 0, n - 1 do
    local a, k = 4 * i, first_key + keys_per_check * i
    local r = 6 * i
    local ok, allowed, reason, remaining, reset_after, retry_after, delay
    if node_wide then
      ok, allowed, reason, remaining, reset_after, retry_after, delay =
          pcall(decide_here, decide, keys_per_check == 2, keys[k], keys[k + 1], now, args[a + 1],
                args[a + 2], args[a + 3], args[a + 4])
      if not ok then
        local message = type(allowed) == "table" and allowed.err or tostring(allowed)
        -- "Script attempted to access a non local key…" (7.0), "Lua script attempted…" (6.2)
        if not string.find(message, "cript attempted to", 1, true) then
          error(allowed)
        end
        allowed = string.find(message, "cluster is down", 1, true) and -2 or -1
        reason, remaining, reset_after, retry_after, delay = 0, 0, 0, 0, 0
      end
    else
      allowed, reason, remaining, reset_after, retry_after, delay =
          decide(keys[k], keys[k + 1], now, args[a + 1], args[a + 2], args[a + 3], args[a + 4])
    end
    if allowed == true then
      allowed = 1
    elseif allowed == false then
      allowed = 0
    end
    out[r + 1], out[r + 2], out[r + 3] = allowed, reason, remaining
    out[r + 4], out[r + 5], out[r + 6] = reset_after, retry_after, delay
  end
  return out
end
