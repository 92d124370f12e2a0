--[[
  Releases a payment's paymentKey and orderId claims at the root (several payment shards), each
  only if it still names that payment: intake's claims for a request its shard refused, a
  payment that never appeared (fenced in its shard: fence.lua), or a payment that ended FAILED
  before any confirm passed the guard (`claimsReleased`, includes/finalize.lua), so that the
  merchant may pay the same order again. Takes its pending entry out.

  Archiving a payment that keeps its claims (lua/archive.lua, in the shard) shortens them here
  instead: ARGV[3] says until when they are kept.

  KEYS[1] paymentKey claim   KEYS[2] orderId claim   KEYS[3] pending claims zset
  ARGV[1] payment id         ARGV[2] its pending entry's member ('' for none)
  ARGV[3] '' to release; a time (ms epoch) to keep them until instead

  Returns the number of claims released (or kept until ARGV[3]).
]]
local released = 0
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v and (v == ARGV[1] or string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. ' ') then
    if ARGV[3] == '' then redis.call('DEL', KEYS[i]) else redis.call('PEXPIREAT', KEYS[i], ARGV[3]) end
    released = released + 1
  end
end
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[3], ARGV[2]) end
return released
