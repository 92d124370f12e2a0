--[[
  Admission: takes payments from the merchants' fair queues, by turns round the ring (deficit
  round robin, includes/fair-share.lua), until the payments admitted and not yet past the guard
  reach the lead. Every worker process runs it every few ms; it is atomic, so two never admit the
  same payment, and any live worker's call serves every merchant (nothing is owned by a worker).

  Each admitted payment gets an outbox marker in the same step: the caller adds its confirm job
  and clears the marker; should it die first, the sweeper adds the job from the marker.

  KEYS[1] fair ring list     KEYS[2] fair meta hash     KEYS[3] fair admitted zset
  KEYS[4] outbox zset        KEYS[5] breaker hash

  ARGV[1] fair key base (`<prefix>:fq:<provider>:`): a merchant's queue and hash hang off it
  ARGV[2] the lead: the most payments admitted and not yet past the guard
  ARGV[3] the most payments to admit in this call
  ARGV[4] admitted entries older than this (ms) no longer count. A payment admitted is sent
          within about the lead; one that is not is held up (its worker died with its job
          active, and BullMQ hands the job to another only once its lock lapses), and it must not
          keep the live workers from admitting more meanwhile.

  Nothing is admitted while the breaker is open: confirms would only be held back and re-run.

  Returns the admitted payment ids, in the order admitted.
]]
--@include fair-share

-- A merchant's debt (in-doubt calls charged by the guard) is forgiven past this many turns of its
-- weight: a storm of inquiries may delay its confirms for a few turns, never for good.
local MAX_DEBT_TURNS = 10

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local base = ARGV[1]

local breaker = redis.call('HMGET', KEYS[5], 'state', 'openUntil')
if breaker[1] == 'open' and now < tonumber(breaker[2] or '0') then return {} end

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]))
local room = math.min(tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[3]), tonumber(ARGV[3]))
local admitted = {}
-- Each turn admits at least one payment, except a turn that only pays off a debt or drops a
-- merchant whose queue is empty; those are few, and bounded here.
local turns = room + 64
while room > 0 and turns > 0 do
  turns = turns - 1
  local m = redis.call('LINDEX', KEYS[1], 0)
  if not m then break end
  local mk, qk = fairMerchantKey(base, m), fairQueueKey(base, m)
  local h = redis.call('HMGET', mk, 'credit', 'weight')
  local credit, weight = tonumber(h[1] or '0'), tonumber(h[2] or '1')
  -- Credit left: the rest of a turn that ran out of room in an earlier call. Otherwise a new turn.
  if credit < 1 then credit = math.max(credit, -MAX_DEBT_TURNS * weight) + weight end
  local got = 0
  if credit >= 1 then
    local ids = redis.call('LPOP', qk, math.min(math.floor(credit), room))
    if ids then
      got = #ids
      local marks = {}
      for i = 1, got do
        marks[2 * i - 1] = now
        marks[2 * i] = ids[i]
        admitted[#admitted + 1] = ids[i]
      end
      redis.call('ZADD', KEYS[3], unpack(marks))
      redis.call('ZADD', KEYS[4], unpack(marks))
      redis.call('HINCRBY', mk, 'out', got)
      redis.call('HINCRBY', KEYS[2], 'waiting', -got)
    end
  end
  credit = credit - got
  room = room - got
  if redis.call('LLEN', qk) == 0 then
    -- Nothing left: out of the ring. An unused turn is not kept (a merchant cannot save up
    -- turns while idle); a debt is.
    redis.call('LPOP', KEYS[1])
    redis.call('HINCRBY', KEYS[2], 'weights', -weight)
    credit = math.min(credit, 0)
  elseif credit < 1 then
    -- Its turn is used: to the back of the ring.
    redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
  end
  -- Otherwise the room ran out within its turn: it stays at the head with what is left.
  redis.call('HSET', mk, 'credit', credit)
end
return admitted
