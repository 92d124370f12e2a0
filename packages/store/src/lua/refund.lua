--[[
  Merchant cancels and refunds (packages/domain refunds.ts): every change of them is one call of
  this script, atomic with the payment, its history and the books.

  KEYS[1] payment hash     KEYS[2] history list       KEYS[3] books stream
  KEYS[4] refunds due zset (of the payment's provider)                KEYS[5] counters hash
  KEYS[6] open zset        KEYS[7] in-doubt zset      KEYS[8] failures list
  KEYS[9] approved zset    KEYS[10] final states per second hash      KEYS[11] breaker hash
  KEYS[12] the cancel's idempotency hash (request only)

  ARGV[1] op: request | send | check | settle | idle | claim
  ARGV[2] now-independent settings: retention (ms) of the history and of the idempotency hash
  ARGV[3] pub/sub channel told "<id>" when a payment changes for its merchant (long polls)

  request  (the API) ARGV[4] payment id  ARGV[5] merchant id  ARGV[6] cancel id  ARGV[7] amount
           (0: the whole balance)  ARGV[8] reason  ARGV[9] the request's fingerprint
           By the payment's state:
           - queued (never sent to the PG): CANCELED at once, claims released, no PG call;
           - being confirmed: a full cancel becomes the payment's own cancel (phase canceling:
             the PG voids the approval under way) and is settled when the payment is final; a
             partial one is {'not_yet'};
           - APPROVED: the amount is reserved against the balance (racing cancels can never
             reserve more than it), and the payment is due at the refunder;
           - any other final state: {'not_cancelable'}.
           Returns {'ok', cancelId} | {'replay', cancelId, body} | {'reused'} | {'not_found'} |
                   {'not_yet'} | {'not_cancelable'} | {'exceeds'}
  send     (the refunder's guard, right before the PG cancel) ARGV[4] payment id  ARGV[5] cancel id
           ARGV[6] '1' for a re-check (a later send slot)  ARGV[7] fair key base
           Lets the cancel out only while it is the payment's first PENDING refund and none is in
           flight, and the breaker is not open; marks it in flight ('sending'). After this the
           cancel is never sent again: its outcome, if not known, is settled by queries.
           Returns {'ok', paymentKey, amount, reason} | {'refused', why}
  check    (the guard of a query for a cancel in doubt) ARGV[4] payment id  ARGV[5] cancel id
           ARGV[6] re-check  ARGV[7] fair key base. Returns as send.
  settle   (after the answer) ARGV[4] payment id  ARGV[5] cancel id  ARGV[6] step: succeed | fail
           | check | retry  ARGV[7] delay (ms)  ARGV[8] transactionKey  ARGV[9] failure code
           ARGV[10] failure message  ARGV[11] history event (JSON)
           Returns {'ok'} | {'stale'}
  found    (reconciliation) ARGV[4] payment id  ARGV[5] the PG cancel's transactionKey  ARGV[6] its
           amount  ARGV[7] history event (JSON). A cancel the PG holds and Sluice does not, on a
           payment Sluice holds APPROVED with no cancel in flight: a cancel Sluice ended FAILED
           (NOT_CANCELED_BY_PG) for that amount committed after all, so it is SUCCEEDED now; with
           none, the cancel is added as found at the PG. Counted as a repair.
           Returns {'ok'} | {'stale'}
  idle     ARGV[4] payment id: nothing to do for it; leaves the due set unless a refund is pending.
  claim    ARGV[4] the most to take  ARGV[5] lease (ms): the due payments, each leased (its score
           moved to now + lease) so that no other worker takes it meanwhile, and a dead worker's
           comes due again. Returns the ids.
]]
--@include lifecycle
--@include refunds
--@include finalize
--@include books

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local retention = tonumber(ARGV[2])
local channel = ARGV[3]
local P = KEYS[1]

if op == 'claim' then
  local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
  for _, id in ipairs(ids) do redis.call('ZADD', KEYS[4], 'XX', now + tonumber(ARGV[5]), id) end
  return ids
end

local id = ARGV[4]

-- The payment's history and books, after a change.
local function record(event)
  event.at = now
  history(KEYS[2], retention, KEYS[3], P, id, event)
end

-- The whole balance is back on the card: the payment shows CANCELED (a status change within
-- `final`, not a phase move), and leaves the approvals reconciliation checks against the book
-- (which holds its approval row, then the cancel row that brought it to 0).
local function balanceGone()
  redis.call('HSET', P, 'status', 'CANCELED')
  redis.call('HINCRBY', KEYS[5], 'final:APPROVED', -1)
  redis.call('HINCRBY', KEYS[5], 'final:CANCELED', 1)
  redis.call('ZREM', KEYS[9], id)
end

-- The first PENDING refund (not a void: those ride the payment's own cancel), and its index.
local function headRefund(list)
  for i, r in ipairs(list) do
    if r.status == 'PENDING' and r.kind == 'refund' then return r, i end
  end
  return nil, nil
end

if op == 'request' then
  local idem = KEYS[12]
  local seen = redis.call('HMGET', idem, 'fingerprint', 'cancelId', 'body')
  if seen[1] then
    if seen[1] ~= ARGV[9] then return {'reused'} end
    return {'replay', seen[2], seen[3] or ''}
  end
  local p = redis.call('HMGET', P, 'merchantId', 'phase', 'status', 'amount', 'canceledAmount', 'reservedAmount')
  if not p[1] or p[1] ~= ARGV[5] then return {'not_found'} end
  local phase, status, total = p[2], p[3], tonumber(p[4])
  local canceled, reserved = tonumber(p[5] or '0'), tonumber(p[6] or '0')
  local asked = tonumber(ARGV[7])
  local list = refundsOf(P)
  local entry = { id = ARGV[6], kind = 'refund', amount = 0, reason = ARGV[8], status = 'PENDING', failure = cjson.null,
                  createdAt = now, completedAt = cjson.null, pgTransactionKey = cjson.null }
  local event = { event = 'cancel_requested', cancelId = ARGV[6], from = phase }

  if phase == 'queued' then
    -- Never sent: nothing at the PG to cancel. (A queued payment has no confirm try: attempts 0.)
    if asked ~= 0 and asked ~= total then return {'not_yet'} end
    entry.amount, entry.status, entry.completedAt = total, 'SUCCEEDED', now
    list[#list + 1] = entry
    saveRefunds(P, list)
    local K = { payment = P, open = KEYS[6], inDoubt = KEYS[7], counters = KEYS[5], failures = KEYS[8], approved = KEYS[9], finalRate = KEYS[10] }
    finalize(K, channel, id, now, 'CANCELED', 'CANCELED_BY_MERCHANT', 'Canceled by the merchant before it was sent to the PG')
    redis.call('HSET', P, 'claimsReleased', '1', 'canceledAmount', total)
    redis.call('HINCRBY', KEYS[5], 'refund:succeeded', 1)
    event.status = 'CANCELED'
  elseif phase == 'confirming' or phase == 'inquiring' or phase == 'canceling' then
    -- A confirm may be under way: only a full cancel, which voids it (the contract), and one.
    if asked ~= 0 and asked ~= total then return {'not_yet'} end
    if reserved > 0 then return {'exceeds'} end
    entry.kind, entry.amount = 'void', total
    list[#list + 1] = entry
    saveRefunds(P, list)
    redis.call('HINCRBY', P, 'reservedAmount', total)
    if phase ~= 'canceling' then
      -- The lifecycle table (includes/lifecycle.lua, from the domain) allows this move.
      if not canMove(phase, 'canceling') then return {'not_yet'} end
      redis.call('HSET', P, 'phase', 'canceling', 'updatedAt', now)
      redis.call('HINCRBY', P, 'cancels', 1)
      redis.call('HINCRBY', KEYS[5], 'resolve:cancels', 1)
    end
  elseif phase == 'final' and status == 'APPROVED' then
    local available = total - canceled - reserved
    local amount = asked
    if amount == 0 then amount = available end
    if amount <= 0 or amount > available then return {'exceeds'} end
    entry.amount = amount
    list[#list + 1] = entry
    saveRefunds(P, list)
    redis.call('HINCRBY', P, 'reservedAmount', amount)
    redis.call('ZADD', KEYS[4], 'NX', now, id)
  else
    return {'not_cancelable'}
  end
  redis.call('HSET', P, 'updatedAt', now)
  -- A payment Redis was to forget (archive.lua) stays while a cancel of it is pending; archiving
  -- it again once the cancel is settled sets its expiry anew.
  if entry.status == 'PENDING' then redis.call('PERSIST', P) end
  redis.call('HINCRBY', KEYS[5], 'refund:requested', 1)
  redis.call('HSET', idem, 'fingerprint', ARGV[9], 'cancelId', ARGV[6], 'paymentId', id)
  redis.call('PEXPIRE', idem, retention)
  event.amount = entry.amount
  record(event)
  redis.call('PUBLISH', channel, id)
  return {'ok', ARGV[6]}
end

if op == 'send' or op == 'check' then
  local p = redis.call('HMGET', P, 'phase', 'status', 'refundPhase', 'refundInFlight', 'paymentKey', 'merchantId')
  if not p[1] then return {'refused', 'missing'} end
  local inFlight = p[3] or ''
  if op == 'send' and inFlight == '' and p[2] ~= 'APPROVED' then
    -- No longer approved (a reconciliation repair found it CANCELED at the PG): its refunds
    -- waiting can never go. Nothing was sent for them.
    local list = refundsOf(P)
    for _, r in ipairs(list) do
      if r.kind == 'refund' and r.status == 'PENDING' then
        r.status, r.completedAt = 'FAILED', now
        r.failure = { code = 'NOT_CANCELABLE', message = 'The payment is ' .. tostring(p[2]) .. ' at the PG; nothing to refund' }
        redis.call('HINCRBY', P, 'reservedAmount', -r.amount)
        redis.call('HINCRBY', KEYS[5], 'refund:failed', 1)
      end
    end
    saveRefunds(P, list)
    redis.call('ZREM', KEYS[4], id)
    record({ event = 'refunds_failed', status = p[2] })
    return {'refused', 'phase'}
  end
  if op == 'send' then
    if ARGV[6] == '1' then
      if inFlight ~= 'sending' or p[4] ~= ARGV[5] then return {'refused', 'phase'} end
    else
      if inFlight ~= '' then return {'refused', 'phase'} end
      local head = headRefund(refundsOf(P))
      if p[1] ~= 'final' or p[2] ~= 'APPROVED' or not head or head.id ~= ARGV[5] then return {'refused', 'phase'} end
    end
  else
    if (inFlight ~= 'sending' and inFlight ~= 'checking') or p[4] ~= ARGV[5] then return {'refused', 'phase'} end
  end
  local b = redis.call('HMGET', KEYS[11], 'state', 'openUntil')
  if b[1] == 'open' and now < tonumber(b[2] or '0') then return {'refused', 'breaker'} end
  local head = nil
  for _, r in ipairs(refundsOf(P)) do if r.id == ARGV[5] then head = r end end
  if ARGV[6] ~= '1' then
    if op == 'send' then
      redis.call('HSET', P, 'refundPhase', 'sending', 'refundInFlight', ARGV[5], 'refundSentAt', now)
    else
      redis.call('HSET', P, 'refundPhase', 'checking')
    end
    redis.call('HINCRBY', P, 'pgCalls', 1)
    -- Money in doubt counts against its merchant's share of the PG (includes/fair-share.lua keys).
    if p[6] then redis.call('HINCRBY', ARGV[7] .. 'm:' .. p[6], 'credit', -1) end
  end
  return {'ok', p[5], tostring(head.amount), head.reason}
end

if op == 'idle' then
  if not headRefund(refundsOf(P)) and (redis.call('HGET', P, 'refundPhase') or '') == '' then redis.call('ZREM', KEYS[4], id) end
  return {'ok'}
end

if op == 'found' then
  local p = redis.call('HMGET', P, 'status', 'refundPhase', 'amount')
  if p[1] ~= 'APPROVED' or (p[2] or '') ~= '' then return {'stale'} end
  local list = refundsOf(P)
  local amount = tonumber(ARGV[6])
  local hit = nil
  for _, r in ipairs(list) do
    if r.pgTransactionKey == ARGV[5] then return {'stale'} end
    if not hit and r.status == 'FAILED' and r.amount == amount and type(r.failure) == 'table' and r.failure.code == 'NOT_CANCELED_BY_PG' then hit = r end
  end
  if not hit then
    hit = { id = 'cnl_pg_' .. ARGV[5], kind = 'refund', amount = amount, reason = 'Found at the PG by reconciliation', createdAt = now }
    list[#list + 1] = hit
  end
  hit.status, hit.completedAt, hit.pgTransactionKey = 'SUCCEEDED', now, ARGV[5]
  -- The repair is in the payment's history (and counted), not on the cancel.
  hit.failure = cjson.null
  saveRefunds(P, list)
  local canceled = redis.call('HINCRBY', P, 'canceledAmount', amount)
  redis.call('HINCRBY', KEYS[5], 'recon:repaired', 1)
  redis.call('HSET', P, 'updatedAt', now)
  local event = cjson.decode(ARGV[7])
  event.repair = 'cancel found at the PG'
  event.transactionKey = ARGV[5]
  event.cancelId = hit.id
  if canceled >= tonumber(p[3]) then
    balanceGone()
    event.status = 'CANCELED'
  end
  redis.call('PUBLISH', channel, id)
  record(event)
  return {'ok'}
end

if op == 'settle' then
  local cancelId, step, delay = ARGV[5], ARGV[6], tonumber(ARGV[7])
  local f = redis.call('HMGET', P, 'refundInFlight', 'refundPhase')
  if f[1] ~= cancelId then return {'stale'} end
  -- Only a cancel the PG did not process may be sent again: never one whose outcome was in doubt.
  if step == 'retry' and f[2] ~= 'sending' then return {'stale'} end
  local list = refundsOf(P)
  local r = nil
  for _, x in ipairs(list) do if x.id == cancelId and x.status == 'PENDING' then r = x end end
  if not r then return {'stale'} end
  local event = cjson.decode(ARGV[11])
  event.cancelId = cancelId
  event.step = step
  if step == 'succeed' or step == 'fail' then
    r.completedAt = now
    redis.call('HINCRBY', P, 'reservedAmount', -r.amount)
    if step == 'succeed' then
      r.status = 'SUCCEEDED'
      if ARGV[8] ~= '' then r.pgTransactionKey = ARGV[8] end
      local canceled = redis.call('HINCRBY', P, 'canceledAmount', r.amount)
      redis.call('HINCRBY', KEYS[5], 'refund:succeeded', 1)
      redis.call('HINCRBY', KEYS[5], 'refund:amount', r.amount)
        if canceled >= tonumber(redis.call('HGET', P, 'amount')) then
        balanceGone()
        event.status = 'CANCELED'
      end
    else
      r.status = 'FAILED'
      r.failure = { code = ARGV[9], message = ARGV[10] }
      redis.call('HINCRBY', KEYS[5], 'refund:failed', 1)
    end
    saveRefunds(P, list)
    redis.call('HSET', P, 'refundPhase', '', 'refundInFlight', '', 'updatedAt', now)
    -- The next pending refund of this payment, if any, is due now; else it leaves the due set.
    if headRefund(list) then redis.call('ZADD', KEYS[4], now, id) else redis.call('ZREM', KEYS[4], id) end
    redis.call('PUBLISH', channel, id)
  elseif step == 'check' then
    redis.call('HSET', P, 'refundPhase', 'checking', 'updatedAt', now)
    redis.call('ZADD', KEYS[4], now + delay, id)
  else
    -- retry (the PG did not process it) or halt: the same cancel may be sent again.
    redis.call('HSET', P, 'refundPhase', '', 'refundInFlight', '')
    redis.call('ZADD', KEYS[4], now + delay, id)
  end
  record(event)
  return {'ok'}
end

return redis.error_reply('unknown op ' .. tostring(op))
