--[[
  The phase guard, run right before every PG call for a payment: one atomic compare-and-set on
  the payment's phase, together with the circuit breaker's permission. A stale or re-delivered
  job can never send a confirm once Sluice has decided to cancel, or once the payment is final.

  KEYS[1] payment hash      KEYS[2] breaker hash      KEYS[3] breaker probe token
  KEYS[4] breaker log list  KEYS[5] open zset         KEYS[6] counters hash
  KEYS[7] history list      KEYS[8] in-doubt zset     KEYS[9] failures list
  KEYS[10] approved zset    KEYS[11] final states per second hash   (the last four: finalize)
  KEYS[12] books stream (includes/books.lua)
  KEYS[13] fair admitted zset (includes/fair-share.lua)

  ARGV[1] call: confirm | inquire | cancel
  ARGV[2] allowed phases, comma-separated      ARGV[3] phase to set (may equal the current one)
  ARGV[4] breaker probe interval (ms)          ARGV[5] max age in queue (ms), for a first confirm
  ARGV[6] payment id
  ARGV[7] '1' for a re-check of a call that already passed (it took a later send slot): the phase
          and the breaker must still allow it, but nothing is counted or moved again. A confirm
          refused on its re-check is never written: its try is settled (`confirmsSettled`, see
          apply-step.lua), as it was counted in `attempts` when it first passed.
  ARGV[8] pub/sub channel told "<id>" when a payment becomes final (an expiry, here)
  ARGV[9] fair key base (`<prefix>:fq:<provider>:`)

  The fair share: a first confirm that reaches the guard leaves the admitted payments (unless the
  breaker holds it back: it is still to be sent), and an inquiry or cancel that passes is
  charged to its merchant's credit, so that money in doubt counts against its merchant's share.

  Returns
    {'ok', paymentKey, orderId, amount, attempts}   the call may go out now
    {'phase', currentPhase}                          the payment is elsewhere: do not send
    {'breaker', state}                               the breaker holds this call back
    {'expired'}                                      QUEUED too long: now FAILED EXPIRED_IN_QUEUE
    {'missing'}                                      no such payment
]]
--@include lifecycle
--@include refunds
--@include finalize
--@include books
--@include fair-share

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local call = ARGV[1]
local recheck = ARGV[7] == '1'

local p = redis.call('HMGET', KEYS[1], 'phase', 'paymentKey', 'orderId', 'amount', 'attempts', 'createdAt', 'merchantId')
local phase = p[1]
-- A first confirm leaves the admitted payments once it is sent, or will never be (the breaker
-- holding it back leaves it there: it is still to be sent).
local function leaveAdmission()
  if call == 'confirm' and not recheck then redis.call('ZREM', KEYS[13], ARGV[6]) end
end
if not phase then
  leaveAdmission()
  return {'missing'}
end

-- A refusal. A confirm's re-check refused: the try that passed before will not be written.
local function refuse(result)
  if recheck and call == 'confirm' then redis.call('HINCRBY', KEYS[1], 'confirmsSettled', 1) end
  return result
end

local allowed = false
for ph in string.gmatch(ARGV[2], '[^,]+') do
  if ph == phase then allowed = true end
end
if not allowed or not canMove(phase, ARGV[3]) then
  leaveAdmission()
  return refuse({'phase', phase})
end

if phase == 'queued' and now - tonumber(p[6]) > tonumber(ARGV[5]) then
  local K = { payment = KEYS[1], open = KEYS[5], inDoubt = KEYS[8], counters = KEYS[6], failures = KEYS[9], approved = KEYS[10], finalRate = KEYS[11] }
  finalize(K, ARGV[8], ARGV[6], now, 'FAILED', 'EXPIRED_IN_QUEUE', 'Still queued past the maximum age; never sent to the PG')
  redis.call('RPUSH', KEYS[7], cjson.encode({ at = now, event = 'expired_in_queue', status = 'FAILED' }))
  books(KEYS[12], KEYS[1], ARGV[6], { at = now, from = phase, cause = 'expired_in_queue' })
  leaveAdmission()
  return {'expired'}
end

-- The circuit breaker: closed lets everything through. Open holds confirms back and lets one
-- inquiry or cancel through per probe interval (money in doubt keeps a slow probe rate).
-- Half-open lets one call of any kind through per probe interval.
local b = redis.call('HMGET', KEYS[2], 'state', 'openUntil')
local state = b[1] or 'closed'
if state == 'open' and now >= tonumber(b[2] or '0') then
  state = 'half_open'
  redis.call('HSET', KEYS[2], 'state', state, 'since', now, 'probesOk', 0)
  redis.call('LPUSH', KEYS[4], cjson.encode({ at = now, state = state }))
  redis.call('LTRIM', KEYS[4], 0, 199)
end
if state == 'open' and call == 'confirm' then return refuse({'breaker', state}) end
if state ~= 'closed' then
  -- The probe token names the payment holding it, so that a re-check keeps its own.
  if not redis.call('SET', KEYS[3], ARGV[6], 'NX', 'PX', tonumber(ARGV[4])) then
    if not (recheck and redis.call('GET', KEYS[3]) == ARGV[6]) then return refuse({'breaker', state}) end
  end
end
if recheck then return {'ok', p[2], p[3], p[4], tonumber(p[5] or '0')} end

local attempts = tonumber(p[5] or '0')
if call == 'confirm' then
  leaveAdmission()
  attempts = attempts + 1
  -- `confirmSentAt`: the cancel deadline and the inquiry schedule run from the latest confirm.
  redis.call('HSET', KEYS[1], 'phase', ARGV[3], 'status', 'PROCESSING', 'attempts', attempts, 'updatedAt', now, 'confirmSentAt', now)
else
  if ARGV[3] ~= phase then redis.call('HSET', KEYS[1], 'phase', ARGV[3], 'updatedAt', now) end
  if p[7] then redis.call('HINCRBY', fairMerchantKey(ARGV[9], p[7]), 'credit', -1) end
end
redis.call('HINCRBY', KEYS[1], 'pgCalls', 1)
-- The books hear of a confirm try (attempts, PROCESSING) and of a phase moved. An inquiry or
-- cancel in the phase it is already in changes only the call count, which the step applied on its
-- answer carries to the books: no snapshot here, between the send slot and the write.
if call == 'confirm' or ARGV[3] ~= phase then
  books(KEYS[12], KEYS[1], ARGV[6], { at = now, from = phase, cause = call })
end
return {'ok', p[2], p[3], p[4], attempts}
