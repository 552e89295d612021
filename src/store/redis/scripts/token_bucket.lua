-- File: store/redis/scripts/token_bucket.lua
--
-- token_bucket: the debt meter (debt_meter.lua); tokens = limit - debt / interval.
return decide_debt(false)
