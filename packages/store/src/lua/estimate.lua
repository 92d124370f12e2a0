--[[
  Where a new payment of a merchant would stand at a provider, if it came now: the estimate
  create-payment.lua gives its 202 (fairSlots), without writing anything. For GET /v1/providers,
  which a checkout page asks before it opens a PG's payment window.

  KEYS[1] fair meta hash     KEYS[2] fair admitted zset
  KEYS[3] the merchant's fair queue                       KEYS[4] the merchant's fair hash
  ARGV[1] the merchant's weight

  Returns {slots (a string: it may be a fraction), payments waiting at the provider, admitted}.
]]
--@include fair-share

local queued, weight, activeWeights = fairPlace(KEYS[3], KEYS[4], KEYS[1], tonumber(ARGV[1]))
local admitted = redis.call('ZCARD', KEYS[2])
local waiting = math.max(0, tonumber(redis.call('HGET', KEYS[1], 'waiting') or '0'))
return {tostring(fairSlots(admitted, queued + 1, weight, activeWeights)), waiting, admitted}
