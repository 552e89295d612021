-- File: store/redis/scripts/leaky_bucket.lua
--
-- leaky_bucket: the debt meter (debt_meter.lua); an admitted request also reports the delay that
-- spaces the flow at the leak rate (the time the debt ahead of it takes to drain).
return decide_debt(true)
