--[[
  A payment as read for a merchant, with the PG send slots until it should reach the PG while it
  is QUEUED (the `eta` of a GET): one atomic read, so that the two agree.

  KEYS[1] payment hash       KEYS[2] open (backlog) zset
  ARGV[1] fair key root (`<prefix>:fq:`): the payment's provider's fair keys are under
          `<root><provider>:` (keys.ts `fair`)
  ARGV[2] payment id         ARGV[3] the provider of a payment that names none (written before
          there were several)

  Returns {slots, field, value, …}: slots '' when the payment is not QUEUED (or not there: no
  fields). The estimate is create-payment.lua's (fairSlots): a payment still in its merchant's
  queue is `fqSeq − out` turns of its merchant away, behind the admitted ones; an admitted one
  is behind those admitted before it. A QUEUED payment written before the fair queues (no
  `fqSeq`) is ranked in the backlog as then.
]]
--@include fair-share

local hash = redis.call('HGETALL', KEYS[1])
local h = redis.call('HMGET', KEYS[1], 'status', 'merchantId', 'fqSeq', 'provider')
local slots = ''
if h[1] == 'QUEUED' then
  local base = ARGV[1] .. (h[4] or ARGV[3]) .. ':'
  local admittedKey = base .. 'admitted'
  local rank = redis.call('ZRANK', admittedKey, ARGV[2])
  if rank then
    slots = rank + 1
  elseif h[3] then
    local mh = redis.call('HMGET', fairMerchantKey(base, h[2]), 'out', 'weight')
    local pos = tonumber(h[3]) - tonumber(mh[1] or '0')
    local admitted = redis.call('ZCARD', admittedKey)
    if pos > 0 then
      local activeWeights = tonumber(redis.call('HGET', base .. 'meta', 'weights') or '0')
      local weight = tonumber(mh[2] or '1')
      slots = fairSlots(admitted, pos, weight, math.max(activeWeights, weight))
    else
      -- Admitted, and its job may be running: the lead at most.
      slots = admitted + 1
    end
  else
    local r = redis.call('ZRANK', KEYS[2], ARGV[2])
    if r then slots = r + 1 end
  end
end
-- A fraction as a string: Redis would cut a Lua number to an integer.
return {tostring(slots), unpack(hash)}
