--[[
  A payment's merchant cancels (packages/domain refunds.ts), written once for every script that
  touches them. They live on the payment hash, so that every snapshot the books take carries them:
  - `refunds`: JSON list of { id, kind (void | refund), amount, reason, status (PENDING |
    SUCCEEDED | FAILED), failure, createdAt, completedAt, pgTransactionKey }, oldest first;
  - `reservedAmount`: the amounts of the PENDING ones (what new cancels cannot take);
  - `canceledAmount`: the amounts of the SUCCEEDED ones (the balance is amount less this);
  - `refundPhase`: '' (none in flight), 'sending' (one passed its guard: it may be at the PG) or
    'checking' (its outcome is not known: only queries go out for it, never the cancel again);
    `refundInFlight` (its id) and `refundSentAt`.

  refundsOf(payment)                 the list (a table; empty when none)
  saveRefunds(payment, list)         writes it back
  settleVoids(K, now, status)        a payment became final (includes/finalize.lua): its merchant's
                                     full cancel made while it was being confirmed (a `void`)
                                     succeeded if it ended CANCELED; if it ended APPROVED, it is
                                     now a refund of the whole amount and is due at K.refundDue
                                     (the card was charged: the merchant still wants it back); any
                                     other end failed it (nothing was charged).
]]
local function refundsOf(payment)
  local raw = redis.call('HGET', payment, 'refunds')
  if not raw or raw == '' then return {} end
  return cjson.decode(raw)
end

local function saveRefunds(payment, list)
  -- cjson encodes an empty table as an object: an empty list is written as one.
  if #list == 0 then
    redis.call('HSET', payment, 'refunds', '[]')
  else
    redis.call('HSET', payment, 'refunds', cjson.encode(list))
  end
end

local function settleVoids(K, now, status)
  if redis.call('HEXISTS', K.payment, 'refunds') == 0 then return end
  local list = refundsOf(K.payment)
  local changed, due = false, false
  for _, r in ipairs(list) do
    if r.kind == 'void' and r.status == 'PENDING' then
      changed = true
      if status == 'CANCELED' then
        r.status = 'SUCCEEDED'
        r.completedAt = now
        redis.call('HINCRBY', K.payment, 'reservedAmount', -r.amount)
        redis.call('HINCRBY', K.payment, 'canceledAmount', r.amount)
        redis.call('HINCRBY', K.counters, 'refund:succeeded', 1)
      elseif status == 'APPROVED' and K.refundDue then
        r.kind = 'refund'
        due = true
      else
        r.status = 'FAILED'
        r.completedAt = now
        r.failure = { code = 'NOT_CANCELABLE', message = 'The payment ended ' .. status .. ' before the cancel took effect; nothing was charged' }
        redis.call('HINCRBY', K.payment, 'reservedAmount', -r.amount)
        redis.call('HINCRBY', K.counters, 'refund:failed', 1)
      end
    end
  end
  if changed then saveRefunds(K.payment, list) end
  if due then redis.call('ZADD', K.refundDue, 'NX', now, redis.call('HGET', K.payment, 'id')) end
end
