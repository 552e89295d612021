-- File: store/redis/scripts/gcra.lua
--
-- gcra: the debt meter (debt_meter.lua) with limit = burst; debt is redis-cell's TAT - now.
return decide_debt(false)
