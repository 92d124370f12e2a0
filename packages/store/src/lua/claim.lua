--[[
  Intake's first step with several payment shards (REDIS_SHARDS > 1): takes a new payment's
  paymentKey and orderId claims at the root, before the payment is written in its shard
  (create-payment.lua, mode 'granted'). The claims are unique across all merchants and shards, so
  they cannot live in a shard; a script sees one slot, so the two steps are apart, ordered so that
  a crash between them is safe:
  - a claim names its holder and the request that took it (`<id> <merchant>:<idempotency hash>`),
    so the merchant's retry of that request finds its own claims and goes on with the same id;
  - each claim taken is also in the pending set until a sweep sees the payment in its shard; a
    payment that never appeared is fenced in its shard (fence.lua: no create can follow) and its
    claims released (release-claims.lua). A payment never exists without its claims.

  KEYS[1] paymentKey claim   KEYS[2] orderId claim   KEYS[3] pending claims zset
  ARGV[1] the new payment id ARGV[2] the request: `<merchant>:<idempotency key hash>`
  ARGV[3] now (ms)           ARGV[4] how long a claim is kept (ms)
  ARGV[5] the pending entry's member (JSON: [id, paymentKey, orderId]) for a fresh claim

  Returns
    {'ok', id, fresh}          the claims name `id` now: the new id (fresh '1'), or the id an
                               earlier try of the same request took them for (fresh '0')
    {'held', kind, id}         a claim is held by another request's payment `id`
                               (kind: dup_payment_key | dup_order_id)
]]
local function holder(claim)
  local v = redis.call('GET', claim)
  if not v then return nil, nil end
  local sp = string.find(v, ' ', 1, true)
  if not sp then return v, '' end
  return string.sub(v, 1, sp - 1), string.sub(v, sp + 1)
end

local id = nil
local pkId, pkBy = holder(KEYS[1])
if pkId then
  if pkBy ~= ARGV[2] then return {'held', 'dup_payment_key', pkId} end
  id = pkId
end
local oidId, oidBy = holder(KEYS[2])
if oidId then
  if oidBy ~= ARGV[2] or (id and id ~= oidId) then return {'held', 'dup_order_id', oidId} end
  id = oidId
end
local fresh = id == nil
if fresh then
  id = ARGV[1]
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
end
local v = id .. ' ' .. ARGV[2]
redis.call('SET', KEYS[1], v, 'PX', ARGV[4])
redis.call('SET', KEYS[2], v, 'PX', ARGV[4])
return {'ok', id, fresh and '1' or '0'}
