-- File: store/redis/scripts/token_bucket.lua
--
-- token_bucket: the debt meter (debt_meter.lua); tokens = limit - debt / interval.
local function decide(key, _, now, cost, limit, interval, per_us)
  return decide_debt(key, now, cost, limit, interval, per_us, false)
end

return decide_checks(1, debt_parameters, decide)
