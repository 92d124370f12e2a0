--[[
  A payment whose claims were taken at the root (claim.lua) and that a sweep does not find in its
  shard: fences it, so that no intake step still under way can create it later (create-payment.lua
  answers 'fenced'), before its claims are released. Run in the payment's shard.

  KEYS[1] payment hash
  ARGV[1] how long the fence is kept (ms): as long as a claim could still name the payment

  Returns 'exists' (the payment is there: nothing to do) or 'fenced'.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HEXISTS', KEYS[1], 'fenced') == 1 then return 'fenced' end
  return 'exists'
end
redis.call('HSET', KEYS[1], 'fenced', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 'fenced'
