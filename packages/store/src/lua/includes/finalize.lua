--[[
  finalize(K, channel, id, now, status, failureCode, failureMessage): everything "final" means,
  written once. Every script that makes a payment final includes this file (`--@include finalize`
  on a line of its own; lua/index.ts puts the file there) and calls it, so no path can make a
  payment final and forget part of it:
  - the payment's phase `final`, its status, `updatedAt` and `finalizedAt`, and its failure;
  - the latest-failures list (failures only);
  - the backlog (`open`) and in-doubt indexes lose it, the approved index gains an APPROVED one;
  - the counters (`final:<STATUS>`) and the per-second series of final states;
  - a merchant's cancel of the payment while it was being confirmed, settled (settleVoids in
    includes/refunds.lua, which every script including this one includes first);
  - the id published on `channel`, which wakes long polls (`?wait=`) and the dashboard;
  - a FAILED payment that no confirm ever passed the guard for (`attempts` 0: expired in the
    queue, say) releases its paymentKey and orderId claims (`claimsReleased`): the PG never saw
    it, so the merchant may pay the same order again. create-payment.lua reads the mark; the
    claim keys stay, so the payment is still found by its orderId until another takes it. Any
    payment the PG may have seen keeps its claims.

  K: { payment, open, inDoubt, counters, failures, approved, finalRate, refundDue } (key names;
  refundDue may be absent where no cancel can be pending)
]]
local function finalize(K, channel, id, now, status, failureCode, failureMessage)
  redis.call('HSET', K.payment, 'phase', 'final', 'status', status, 'updatedAt', now, 'finalizedAt', now)
  if failureCode ~= '' then
    redis.call('HSET', K.payment, 'failureCode', failureCode, 'failureMessage', failureMessage)
    redis.call('LPUSH', K.failures, cjson.encode({ at = now, id = id, status = status, code = failureCode, message = failureMessage }))
    redis.call('LTRIM', K.failures, 0, 99)
  end
  if status == 'FAILED' and (tonumber(redis.call('HGET', K.payment, 'attempts')) or 0) == 0 then
    redis.call('HSET', K.payment, 'claimsReleased', '1')
  end
  redis.call('ZREM', K.open, id)
  redis.call('ZREM', K.inDoubt, id)
  redis.call('HINCRBY', K.counters, 'final:' .. status, 1)
  if status == 'APPROVED' then redis.call('ZADD', K.approved, now, id) end
  local sec = math.floor(now / 1000)
  redis.call('HINCRBY', K.finalRate, sec .. ':' .. status, 1)
  redis.call('HDEL', K.finalRate, (sec - 900) .. ':APPROVED', (sec - 900) .. ':DECLINED', (sec - 900) .. ':FAILED', (sec - 900) .. ':CANCELED')
  -- A merchant's full cancel made while the payment was being confirmed (includes/refunds.lua).
  settleVoids(K, now, status)
  redis.call('PUBLISH', channel, id)
end
