--[[
  Archive: the books hold this payment, final, at the version Redis holds, so Redis keeps it only
  for its hot window (PAYMENT_HOT_MS) and then forgets it. Run by the drainer after its commit.

  KEYS[1] payment hash      KEYS[2] history list     KEYS[3] idempotency key
  KEYS[4] paymentKey claim  KEYS[5] orderId claim

  ARGV[1] payment id        ARGV[2] version the books committed     ARGV[3] hot window (ms)
  ARGV[4] claims kept at least until (ms epoch): a paymentKey may be confirmed at the PG until its
          session ends, so its claim outlives a short hot window

  - the payment and its history expire after the hot window;
  - the idempotency key keeps only what a replay needs, as one string `<fingerprint> <payment id>`
    with the fingerprint's first 32 hex digits (create-payment.lua says why 32): about 230 B
    under the default prefix. The 202 body is in the books, and a replay reads it there
    (create-payment.lua reads both forms);
  - the claims (if this payment still holds them) expire after the hot window or ARGV[4], the later;
    claims the payment released are deleted.

  With several payment shards the claims are at the root: KEYS[4] and KEYS[5] are then the
  shard's (never set), and the caller settles the root's claims (release-claims.lua) as the
  answer says.

  Returns 1 (2: archived, and its claims were released), or 0 when Redis holds a newer version, the payment is not final, or a merchant's
  cancel of it is pending (refund.lua): a later change will be archived when it is drained.
]]
local p = redis.call('HMGET', KEYS[1], 'v', 'phase', 'reservedAmount')
if p[1] ~= ARGV[2] or p[2] ~= 'final' or tonumber(p[3] or '0') > 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hot = tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[1], hot)
redis.call('PEXPIRE', KEYS[2], hot)
if redis.call('TYPE', KEYS[3])['ok'] == 'hash' then
  local idem = redis.call('HMGET', KEYS[3], 'fp', 'id')
  local ttl = redis.call('PTTL', KEYS[3])
  if idem[2] == ARGV[1] and ttl > 0 then
    redis.call('SET', KEYS[3], string.sub(idem[1], 1, 32) .. ' ' .. idem[2], 'PX', ttl)
  end
end
-- Released claims (finalize.lua: FAILED before any confirm was sent) go now: the mark that
-- releases them expires with the hash, and the order must stay payable again after it.
local released = redis.call('HGET', KEYS[1], 'claimsReleased') == '1'
local claimsUntil = math.max(now + hot, tonumber(ARGV[4]))
for _, claim in ipairs({ KEYS[4], KEYS[5] }) do
  if redis.call('GET', claim) == ARGV[1] then
    if released then redis.call('DEL', claim) else redis.call('PEXPIREAT', claim, claimsUntil) end
  end
end
if released then return 2 end
return 1
