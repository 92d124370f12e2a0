--[[
  Applies the step decided after a PG answer (packages/domain decide.ts), if the payment is
  still in the phase the call was made in. One atomic change of the payment, the backlog, the
  in-doubt set, the counters, the latest failures and the payment's history. Everything "final"
  means is includes/finalize.lua, shared with every script that makes a payment final.

  KEYS[1] payment hash     KEYS[2] open zset       KEYS[3] in-doubt zset
  KEYS[4] counters hash    KEYS[5] failures list   KEYS[6] history list
  KEYS[7] approved zset (id -> finalizedAt, what reconciliation checks against the PG's book)
  KEYS[8] final states per second hash ("<sec>:<STATUS>" -> count), for the dashboard
  KEYS[9] books stream (includes/books.lua)
  KEYS[10] refunds due zset (includes/refunds.lua: a merchant's cancel of a payment that ended APPROVED)

  ARGV[1] payment id       ARGV[2] expected phase  ARGV[3] step: final | inquire | reconfirm | cancel | repair | note
  ARGV[4] history event (JSON, without time)       ARGV[5] retention (ms)
  ARGV[6] pub/sub channel told "<id>" when a payment becomes final (long-polling readers)
  ARGV[7] 1 if this answers a confirm try the PG read, or that was never written (it settles the
          try: `confirmsSettled`, counted even when the step itself is stale), else 0
  final:   ARGV[8] status  ARGV[9] failure code  ARGV[10] failure message  ARGV[11] transactionKey  ARGV[12] approvedAt
  inquire: ARGV[8] 1 if the inquiry was answered (counts toward the deadline), else 0
  repair:  ARGV[8] new status (reconciliation's recorded repair of a final payment)   ARGV[9] reason

  A confirm try counts in `attempts` (guard.lua) when it passes the guard; while `attempts` exceeds
  `confirmsSettled`, some try may still reach the PG (decide.ts, afterCancel).

  Returns {'ok', phase}, {'stale', currentPhase} (another step got there first: do nothing), or
  {'refused', currentPhase} (the lifecycle table does not allow that move from there; counted as
  `lifecycle:refused`, a bug to look at).
]]
--@include lifecycle
--@include refunds
--@include finalize
--@include books

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, expected, step = ARGV[1], ARGV[2], ARGV[3]
local K = { payment = KEYS[1], open = KEYS[2], inDoubt = KEYS[3], counters = KEYS[4], failures = KEYS[5], approved = KEYS[7], finalRate = KEYS[8], refundDue = KEYS[10] }

local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {'stale', 'missing'} end
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[1], 'confirmsSettled', 1) end
if phase ~= expected then return {'stale', phase} end

-- The phase each step moves to; the lifecycle table (includes/lifecycle.lua, generated from the
-- domain) must allow it. A 'note' and a 'repair' move no phase.
local TARGET = { final = 'final', inquire = 'inquiring', reconfirm = 'confirming', cancel = 'canceling' }
if TARGET[step] ~= nil and not canMove(phase, TARGET[step]) then
  redis.call('HINCRBY', KEYS[4], 'lifecycle:refused', 1)
  return {'refused', phase}
end

local event = cjson.decode(ARGV[4])
event.at = now
event.from = phase

local newPhase = phase
if step == 'final' then
  local status = ARGV[8]
  newPhase = 'final'
  finalize(K, ARGV[6], id, now, status, ARGV[9], ARGV[10])
  if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'transactionKey', ARGV[11]) end
  if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'approvedAt', ARGV[12]) end
  event.status = status
elseif step == 'inquire' then
  newPhase = 'inquiring'
  redis.call('HSET', KEYS[1], 'phase', newPhase, 'status', 'PROCESSING', 'updatedAt', now)
  if ARGV[8] == '1' then redis.call('HINCRBY', KEYS[1], 'answeredInquiries', 1) end
  if redis.call('ZADD', KEYS[3], 'NX', now, id) == 1 then
    redis.call('HSET', KEYS[1], 'inDoubtAt', now)
    redis.call('HINCRBY', KEYS[4], 'inDoubt:entered', 1)
  end
elseif step == 'repair' then
  local old = redis.call('HGET', KEYS[1], 'status')
  local status = ARGV[8]
  redis.call('HSET', KEYS[1], 'status', status, 'updatedAt', now, 'failureCode', 'RECONCILED', 'failureMessage', ARGV[9])
  redis.call('HINCRBY', KEYS[4], 'final:' .. old, -1)
  redis.call('HINCRBY', KEYS[4], 'final:' .. status, 1)
  redis.call('HINCRBY', KEYS[4], 'recon:repaired', 1)
  if old == 'APPROVED' then redis.call('ZREM', KEYS[7], id) end
  event.repair = old .. ' -> ' .. status
  event.reason = ARGV[9]
  redis.call('PUBLISH', ARGV[6], id)
elseif step == 'reconfirm' then
  newPhase = 'confirming'
  redis.call('HSET', KEYS[1], 'phase', newPhase, 'updatedAt', now)
  redis.call('HINCRBY', KEYS[1], 'reconfirms', 1)
elseif step == 'cancel' then
  newPhase = 'canceling'
  redis.call('HSET', KEYS[1], 'phase', newPhase, 'updatedAt', now)
  redis.call('HINCRBY', KEYS[1], 'cancels', 1)
  redis.call('HINCRBY', KEYS[4], 'resolve:cancels', 1)
end

history(KEYS[6], tonumber(ARGV[5]), KEYS[9], KEYS[1], id, event)
return {'ok', newPhase}
