--[[
  The global permit gate: hands out send slots so that no rolling window at the PG holds more
  than `limit` requests, with one clock (Redis TIME) for every process on every machine.

  A window at the PG is (t - window, t]. A request sent at its slot arrives at the PG at
  slot + d, with 0 <= d <= margin (the send guard and the adaptive margin keep d there). Then any
  PG window holds only slots from a span of window + margin, so the gate keeps every span of
  window + margin to at most `limit` slots: it paces slots at (window + margin) / limit and, as a
  second check, never places a slot closer than window + margin after the limit-th newest one.

  KEYS[1] slots zset (member and score: slot time, µs)
  KEYS[2] last slot (µs)
  KEYS[3] margins hash: client id -> "marginUs:expiresUs" (each client reports its own need),
          and '~<margin>' -> "marginUs:expiresUs", one per margin slots were granted under, until
          those slots have left every window a new slot could share (see below)

  ARGV[1] wanted slots (n >= 0; 0 only reports)   ARGV[2] limit
  ARGV[3] window (µs)                             ARGV[4] minimum margin (µs)
  ARGV[5] maximum margin (µs)                     ARGV[6] horizon (µs): no slot later than now + horizon
  ARGV[7] client id                               ARGV[8] this client's margin need (µs, 0 = none)
  ARGV[9] how long a reported need lasts (µs)
  ARGV[10] tests only: a fake "now" (µs) in place of TIME; empty in production
  ARGV[11] the replication id of the Redis this client is connected to (INFO replication's
           master_replid); empty to skip the check
  KEYS[4] the replication id the gate's state was last written under

  After a failover the new primary holds the gate's state as replicated, which may lack the last
  slots the old primary granted (replication is asynchronous). The state is then present, so the
  cold start below does not fire; a replication id other than the one the state was written under
  (or none recorded) says the state may be stale, and the first new slot waits one window plus the
  largest margin, past anything the lost slots could still put in a PG window.

  Returns { nowUs, marginUs, retryAtUs, slot1, slot2, ... }. retryAtUs is when the next slot
  could be granted (0 when slots were granted).
]]
local now = tonumber(ARGV[10])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local n, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local minMargin, maxMargin, horizon = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local need, needTtl = tonumber(ARGV[8]), tonumber(ARGV[9])

if need > 0 then
  -- string.format, not '..': Lua 5.1's tostring keeps 14 digits, and µs epochs have 16.
  redis.call('HSET', KEYS[3], ARGV[7], string.format('%d:%d', need, now + needTtl))
end
-- `margin`: the largest live need, what new slots may be late by. `spanMargin`: what they are
-- spaced by, which also covers the margins earlier slots still within reach were granted under.
local margin = minMargin
local spanMargin = minMargin
local reports = redis.call('HGETALL', KEYS[3])
for i = 1, #reports, 2 do
  local m, exp = string.match(reports[i + 1], '^([%d%.]+):([%d%.]+)$')
  if m == nil or tonumber(exp) < now then
    redis.call('HDEL', KEYS[3], reports[i])
  elseif string.sub(reports[i], 1, 1) == '~' then
    if tonumber(m) > spanMargin then spanMargin = tonumber(m) end
  elseif tonumber(m) > margin then
    margin = tonumber(m)
  end
end
if margin > maxMargin then margin = maxMargin end
if spanMargin < margin then spanMargin = margin end
if spanMargin > maxMargin then spanMargin = maxMargin end

local span = window + spanMargin
local spacing = math.ceil(span / limit)
local last = tonumber(redis.call('GET', KEYS[2]))
if last == nil then
  -- Cold start (or a Redis that lost its data): slots granted before may still be in the PG's
  -- window, so the first new slot waits one full window.
  last = now + window - spacing
  redis.call('SET', KEYS[2], last, 'PX', 3600000)
end
if ARGV[11] ~= nil and ARGV[11] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[11] then
  local paused = now + window + maxMargin - spacing
  if paused > last then
    last = paused
    redis.call('SET', KEYS[2], last, 'PX', 3600000)
  end
  redis.call('SET', KEYS[4], ARGV[11], 'PX', 3600000)
end

local granted = {}
local retryAt = 0
for i = 1, n do
  local slot = math.max(now, last + spacing)
  local kth = redis.call('ZREVRANGE', KEYS[1], limit - 1, limit - 1, 'WITHSCORES')
  if kth[2] ~= nil and slot - tonumber(kth[2]) < span then
    slot = tonumber(kth[2]) + span
  end
  if slot > now + horizon then
    retryAt = slot - horizon
    break
  end
  redis.call('ZADD', KEYS[1], slot, slot)
  last = slot
  granted[#granted + 1] = slot
end

if #granted > 0 then
  -- A slot granted under margin m may reach the PG up to m after it, so a slot placed within
  -- window + m of it must keep that span too, even if the reported needs have shrunk since.
  -- Each margin slots go out under is kept until they are out of reach. (Only the need-derived
  -- margin is kept, never the span margin itself, or one wide spell would hold it for ever.)
  redis.call('HSET', KEYS[3], string.format('~%d', margin), string.format('%d:%d', margin, last + window + margin))
  redis.call('SET', KEYS[2], last, 'PX', 3600000)
  if ARGV[11] ~= nil and ARGV[11] ~= '' then redis.call('PEXPIRE', KEYS[4], 3600000) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 2 * (window + maxMargin))
  redis.call('PEXPIRE', KEYS[1], 3600000)
end
if n > 0 and #granted == 0 and retryAt == 0 then retryAt = now end
local out = { now, margin, retryAt }
for i = 1, #granted do out[#out + 1] = granted[i] end
return out
