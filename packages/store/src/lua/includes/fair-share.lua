--[[
  The fair share of a provider's budget between merchants: what intake (create-payment.lua), the
  admission (admit.lua), the guard (guard.lua) and reads (view.lua) agree on.

  Each merchant with payments waiting has a queue (a list, oldest first) and sits in the ring.
  Admission takes turns round the ring (deficit round robin): a merchant's turn admits up to its
  weight in payments from the head of its queue, less what its in-doubt calls cost since (the
  guard charges each inquiry or cancel to its merchant's credit). A merchant whose queue empties
  leaves the ring and its sum of weights. Nothing loops over idle merchants: a turn is O(1).

  The meta hash: `weights`, the sum of the weights of the merchants in the ring, and `waiting`,
  the payments in all their queues.

  A merchant's hash: `in` and `out` count the payments that entered its queue and left it
  (admitted), so a payment's place in its queue is its `fqSeq` (the `in` it got) minus `out`;
  `credit` is what is left of its turn (or its debt); `weight` the weight it joined the ring with.

  F: { base } as in keys.ts `fair(provider)`: `<prefix>:fq:<provider>:`
]]
local function fairQueueKey(base, merchantId) return base .. 'q:' .. merchantId end
local function fairMerchantKey(base, merchantId) return base .. 'm:' .. merchantId end

-- PG send slots until a payment at `pos` (1 = next) in its merchant's queue reaches the PG: the
-- payments admitted before it, then `pos` turns of its merchant at its share weight ÷ the ring's
-- weights. An estimate (the share grows when others' queues empty); with one merchant, the
-- backlog ahead plus one.
local function fairSlots(admitted, pos, weight, activeWeights)
  return admitted + pos * activeWeights / weight
end

-- Where a new payment of a merchant would stand: its queue's length, the weight it counts with
-- (the one it joined the ring with while it is there, else `weight`), and the ring's weights with
-- its own included. create-payment.lua places the payment by it; estimate.lua only reads it.
local function fairPlace(queueKey, merchantKey, metaKey, weight)
  local queued = redis.call('LLEN', queueKey)
  local activeWeights = tonumber(redis.call('HGET', metaKey, 'weights') or '0')
  if queued > 0 then
    weight = tonumber(redis.call('HGET', merchantKey, 'weight') or weight)
  else
    activeWeights = activeWeights + weight
  end
  return queued, weight, activeWeights
end
