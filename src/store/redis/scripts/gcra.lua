-- File: store/redis/scripts/gcra.lua
--
-- gcra: the debt meter (debt_meter.lua) with limit = burst; debt is redis-cell's TAT - now.
local function decide(key, _, now, cost, limit, interval, per_us)
  return decide_debt(key, now, cost, limit, interval, per_us, false)
end

return decide_checks(1, debt_parameters, decide)
