-- File: store/redis/scripts/leaky_bucket.lua
--
-- leaky_bucket: the debt meter (debt_meter.lua); an admitted request also reports the delay that
-- spaces the flow at the leak rate (the time the debt ahead of it takes to drain).
local function decide(key, _, now, cost, limit, interval, per_us)
  return decide_debt(key, now, cost, limit, interval, per_us, true)
end

return decide_checks(1, debt_parameters, decide)
