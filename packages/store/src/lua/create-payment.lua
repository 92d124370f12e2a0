--[[
  Intake: writes a new payment, its idempotency key and its global paymentKey/orderId claims, and
  puts it at the tail of its merchant's fair queue (includes/fair-share.lua), all at once, or
  does nothing. The workers admit it from there (admit.lua).

  KEYS[1] idempotency key       KEYS[2] payment hash        KEYS[3] paymentKey claim
  KEYS[4] orderId claim         KEYS[5] open (backlog) zset KEYS[6] counters hash
  KEYS[7] intake per second hash ("<sec>" -> count)
  KEYS[8] books stream (includes/books.lua)
  KEYS[9] fair ring list        KEYS[10] fair meta hash     KEYS[11] fair admitted zset
  KEYS[12] the merchant's fair queue                        KEYS[13] the merchant's fair hash

  ARGV[1] request fingerprint   ARGV[2] payment id          ARGV[3] now (ms)
  ARGV[4] idempotency TTL (ms)  ARGV[5] retention (ms)
  ARGV[6] backlog ceiling for all payments not final (`open`), in payments
  ARGV[7] head of the 202 body  ARGV[8] tail of the 202 body
  ARGV[9] PG rate window (ms)   ARGV[10] PG rate limit per window; both '' = no eta
  ARGV[11] the payment hash as one JSON object of string values (one argument instead of ~26:
           ioredis encodes each argument on the API's hot path)
  ARGV[12] the merchant's weight in the fair share       ARGV[13] the merchant's id
  ARGV[14] backlog ceiling for the merchant's queue at its share of its provider's rate, in that
           provider's send slots
  ARGV[15] the claims: '' = KEYS[3] and KEYS[4] are the claims, checked and taken here (one
           shard); with several shards they are taken at the root first (claim.lua) and
           KEYS[3], KEYS[4] are not touched: 'granted' (they name this payment), or
           'refused <kind> <id>' (held by another request's payment: the answer, unless the
           idempotency key says this is a repeat)

  The 202 body is head .. eta .. tail, where eta is the ISO time at which this payment should
  reach the PG: now + fairSlots(...) × window ÷ limit (the same estimate view.lua makes for
  GETs). Without a rate, the body is head .. tail.

  The body is not kept in Redis: it goes to the books with the intake's change, and the
  idempotency key keeps its eta. A replay while the payment is hot is rendered again from the
  payment's fields that never change (the 202 shows the others as they were at intake) and that
  eta; the body is 300-odd bytes, and in the idempotency hash it made the hash too big for a
  listpack (values ≤ 64 bytes): 816 B per payment with it, about 260 B without.

  Returns one of:
    {'created', id, eta}         eta as spliced into the body ('' without a rate)
    {'replay', id, '', eta, field, value, …}   same key, same request: the eta and the payment's
                                 hash, to render the 202 again
    {'replay', id, body}         the same, from a key written with its body (before this change)
    {'replay', id, ''}           the same, once archived: the body is in the books
    {'reused'}                   same key, another request
    {'dup_payment_key', id}      the paymentKey is held by another payment (any merchant)
    {'dup_order_id', id}         the orderId is held by another payment (any merchant)
  A claim whose payment released it (see finalize.lua) is taken over.
    {'backlog_full', count}      all payments not final fill the ceiling
    {'merchant_backlog_full', seconds}  the merchant's queue fills the ceiling at its share;
                                 seconds: how long its share takes to drain the excess
    {'fenced'}                   (granted) a sweep found no payment for these claims and fenced
                                 the id (fence.lua): its claims are being released
]]
--@include books
--@include payment-hash
--@include fair-share

-- The idempotency key: a hash (fp, id, eta) while the payment is hot; once it is archived, the
-- string '<fp> <id>' (archive.lua), whose body is in the books: '' says "read it there".
-- Both keep the fingerprint's first 32 hex digits (128 bits: only one merchant's requests under
-- one key are compared, and an accidental match is a 2^-128 chance); a key written whole, before
-- the cut, is compared whole.
local function sameRequest(fp)
  -- A field or a match that is missing comes as false or nil: never the same request.
  if type(fp) ~= 'string' then return false end
  return fp == ARGV[1] or (#fp == 32 and fp == string.sub(ARGV[1], 1, 32))
end
-- Payment hashes live under the same prefix as KEYS[2] (the new payment's).
local paymentPrefix = string.sub(KEYS[2], 1, #KEYS[2] - #ARGV[2])
local idemType = redis.call('TYPE', KEYS[1])['ok']
if idemType == 'hash' then
  local idem = redis.call('HMGET', KEYS[1], 'fp', 'id', 'eta', 'body')
  if not sameRequest(idem[1]) then return {'reused'} end
  if idem[4] then return {'replay', idem[2], idem[4]} end
  local held = redis.call('HGETALL', paymentPrefix .. idem[2])
  if #held == 0 then return {'replay', idem[2], ''} end
  return {'replay', idem[2], '', idem[3] or '', unpack(held)}
elseif idemType == 'string' then
  local fp, heldId = string.match(redis.call('GET', KEYS[1]), '^(%S+) (%S+)$')
  if sameRequest(fp) then return {'replay', heldId, ''} end
  return {'reused'}
end

-- The payment holding a claim, unless it released it (finalize.lua: FAILED before any confirm
-- passed the guard, so the PG never saw it).
local function holder(claim)
  local id = redis.call('GET', claim)
  if id and redis.call('HGET', paymentPrefix .. id, 'claimsReleased') ~= '1' then return id end
  return nil
end
local claims = ARGV[15] or ''
if claims == '' then
  local heldPk = holder(KEYS[3])
  if heldPk then return {'dup_payment_key', heldPk} end
  local heldOid = holder(KEYS[4])
  if heldOid then return {'dup_order_id', heldOid} end
elseif claims == 'granted' then
  if redis.call('HEXISTS', KEYS[2], 'fenced') == 1 then return {'fenced'} end
  -- The claims name a payment already written (its idempotency key has expired since): as one
  -- shard answers a paymentKey its own payment holds.
  local there = redis.call('HGET', KEYS[2], 'id')
  if there then return {'dup_payment_key', there} end
else
  local kind, heldBy = string.match(claims, '^refused (%S+) (%S+)$')
  return {kind, heldBy}
end

local backlog = redis.call('ZCARD', KEYS[5])
if backlog >= tonumber(ARGV[6]) then return {'backlog_full', backlog} end
local ceiling = tonumber(ARGV[14])

-- The merchant's place: behind its own queue, at its share of the ring's weights (its own
-- included, with the weight it joined with while it is in the ring).
local queued, weight, activeWeights = fairPlace(KEYS[12], KEYS[13], KEYS[10], tonumber(ARGV[12]))
local ownSlots = fairSlots(0, queued + 1, weight, activeWeights)
if ownSlots > ceiling then
  local excess = (ownSlots - ceiling)
  local seconds = 1
  if ARGV[9] ~= '' then seconds = math.max(1, math.ceil(excess * tonumber(ARGV[9]) / tonumber(ARGV[10]) / 1000)) end
  return {'merchant_backlog_full', seconds}
end

local id, now = ARGV[2], tonumber(ARGV[3])
local idemTtl, retention = tonumber(ARGV[4]), tonumber(ARGV[5])

-- ISO 8601 (UTC, milliseconds) of a time in ms, as JavaScript's toISOString writes it.
-- Days to civil date: H. Hinnant's algorithm (exact for the proleptic Gregorian calendar).
local function iso(ms)
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local sod = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(sod / 3600), math.floor(sod % 3600 / 60), sod % 60, ms - secs * 1000)
end

local eta = ''
if ARGV[9] ~= '' then
  local slots = fairSlots(redis.call('ZCARD', KEYS[11]), queued + 1, weight, activeWeights)
  eta = iso(math.floor(now + (slots * tonumber(ARGV[9])) / tonumber(ARGV[10])))
end

local body = ARGV[7] .. eta .. ARGV[8]
redis.call('HSET', KEYS[1], 'fp', string.sub(ARGV[1], 1, 32), 'id', id, 'eta', eta)
redis.call('PEXPIRE', KEYS[1], idemTtl)

writePaymentHash(KEYS[2], ARGV[11], retention)
if claims == '' then
  redis.call('SET', KEYS[3], id, 'PX', retention)
  redis.call('SET', KEYS[4], id, 'PX', retention)
end
redis.call('ZADD', KEYS[5], now, id)
-- Into the merchant's fair queue; a merchant with none waiting joins the ring.
redis.call('RPUSH', KEYS[12], id)
if queued == 0 then
  redis.call('RPUSH', KEYS[9], ARGV[13])
  redis.call('HSET', KEYS[13], 'weight', weight)
  redis.call('HINCRBY', KEYS[10], 'weights', weight)
end
redis.call('HSET', KEYS[2], 'fqSeq', redis.call('HINCRBY', KEYS[13], 'in', 1))
redis.call('HINCRBY', KEYS[10], 'waiting', 1)
redis.call('HINCRBY', KEYS[6], 'intake:created', 1)
local sec = math.floor(now / 1000)
redis.call('HINCRBY', KEYS[7], sec, 1)
redis.call('HDEL', KEYS[7], sec - 900)
books(KEYS[8], KEYS[2], id, { at = now, cause = 'intake' }, body)
return {'created', id, eta}
