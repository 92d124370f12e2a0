--[[
  Records the results of PG calls, in the order given: the shared circuit breaker's bookkeeping,
  plus the per-second PG call counts the dashboard and metrics read. Every process sees the same
  breaker. A process sends its calls' results in small batches (one script per batch, not per
  call: transitions.ts), each recorded exactly as if alone.

  KEYS[1] breaker hash     KEYS[2] breaker window hash (per-second totals and failures)
  KEYS[3] breaker log      KEYS[4] PG calls per second hash ("<sec>:<call>" -> count)
  KEYS[5] counters hash    KEYS[6] books stream: each call that reached the PG is appended (k=c)

  ARGV[1] consecutive failures that open it    ARGV[2] failure rate that opens it
  ARGV[3] minimum calls in the window for the rate                ARGV[4] window (ms)
  ARGV[5] how long it stays open (ms)          ARGV[6] successful probes that close it
  then 8 arguments per call, from ARGV[7]:
  +0 1 if the PG failed (nothing came back, or a 5xx), else 0
  +1 call (confirm | inquire | cancel | transactions)    +2 outcome label
  +3 the PG's HTTP status, if it answered ('' if not): 429 and 503 are also counted as
     `pg:http:<status>`, for the alerts (both mean "not processed", and neither should happen)
  +4 when the request was written, in ms on this (Redis) clock: the second it is charted in.
     Empty: now. 'unsent': nothing reached the PG, so it is not charted at all.
  +5 payment id ('' for calls of no payment)   +6 Idempotency-Key ('' for none)
  +7 latency (ms, write to answer)

  While the breaker is not closed, only calls written after it opened are probes: the answer (or
  the timeout) of a call written before is news of the spell that opened it, already judged. It
  neither re-opens the breaker (each hanging call timing out would push half-open back) nor counts
  toward closing it (a slow answer from before the outage says nothing of the PG now).

  Returns the breaker state after each call: closed | open | half_open.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sec = math.floor(now / 1000)

-- One call's result (its 8 arguments from ARGV[i]); returns the breaker's state after it.
local function recordOne(i)
  local failed = ARGV[i] == '1'
  local callName, outcome, http = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local sentAt = ARGV[i + 4]
  if sentAt ~= 'unsent' then
    local at = now
    if sentAt ~= '' then at = tonumber(sentAt) end
    redis.call('HINCRBY', KEYS[4], math.floor(at / 1000) .. ':' .. callName, 1)
    redis.call('XADD', KEYS[6], '*', 'k', 'c', 'at', at, 'call', callName, 'outcome', outcome, 'http', http,
      'id', ARGV[i + 5], 'ik', ARGV[i + 6], 'ms', ARGV[i + 7])
  end
  redis.call('HINCRBY', KEYS[5], 'pg:' .. callName .. ':' .. outcome, 1)
  if http == '429' or http == '503' then redis.call('HINCRBY', KEYS[5], 'pg:http:' .. http, 1) end

  local b = redis.call('HMGET', KEYS[1], 'state', 'consecutive', 'probesOk', 'openedAt')
  -- A call held back on our side (never sent, and no PG failure) is no news of the PG: counted and
  -- charted above, but neither a success nor a failure for the breaker.
  if sentAt == 'unsent' and not failed then return b[1] or 'closed' end
  local state = b[1] or 'closed'
  local consecutive = tonumber(b[2] or '0')
  local probesOk = tonumber(b[3] or '0')

  local function open(reason)
    redis.call('HSET', KEYS[1], 'state', 'open', 'since', now, 'openedAt', now, 'openUntil', now + tonumber(ARGV[5]),
      'consecutive', 0, 'probesOk', 0, 'reason', reason)
    redis.call('HINCRBY', KEYS[5], 'breaker:opened', 1)
    redis.call('LPUSH', KEYS[3], cjson.encode({ at = now, state = 'open', reason = reason }))
    redis.call('LTRIM', KEYS[3], 0, 199)
    return 'open'
  end

  if state ~= 'closed' then
    if sentAt ~= '' and sentAt ~= 'unsent' and tonumber(sentAt) < tonumber(b[4] or '0') then return state end
    if failed then
      return open('probe failed')
    end
    probesOk = probesOk + 1
    if probesOk >= tonumber(ARGV[6]) then
      redis.call('HSET', KEYS[1], 'state', 'closed', 'since', now, 'consecutive', 0, 'probesOk', 0)
      redis.call('DEL', KEYS[2])
      redis.call('LPUSH', KEYS[3], cjson.encode({ at = now, state = 'closed' }))
      redis.call('LTRIM', KEYS[3], 0, 199)
      return 'closed'
    end
    redis.call('HSET', KEYS[1], 'probesOk', probesOk)
    return state
  end

  -- Closed: count this call in its second, and look at the window.
  redis.call('HINCRBY', KEYS[2], 't:' .. sec, 1)
  if failed then redis.call('HINCRBY', KEYS[2], 'f:' .. sec, 1) end
  local wsecs = math.ceil(tonumber(ARGV[4]) / 1000)
  redis.call('HDEL', KEYS[2], 't:' .. (sec - wsecs), 'f:' .. (sec - wsecs))
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * 2)

  if not failed then
    if consecutive > 0 then redis.call('HSET', KEYS[1], 'consecutive', 0) end
    return 'closed'
  end
  consecutive = consecutive + 1
  if consecutive >= tonumber(ARGV[1]) then return open(consecutive .. ' consecutive failures') end
  redis.call('HSET', KEYS[1], 'consecutive', consecutive)

  local total, failures = 0, 0
  for s = sec - wsecs + 1, sec do
    local v = redis.call('HMGET', KEYS[2], 't:' .. s, 'f:' .. s)
    total = total + tonumber(v[1] or '0')
    failures = failures + tonumber(v[2] or '0')
  end
  if total >= tonumber(ARGV[3]) and failures / total >= tonumber(ARGV[2]) then
    return open(string.format('failure rate %.2f over %d calls', failures / total, total))
  end
  return 'closed'
end

-- The chart keeps 15 minutes: the second that leaves it now.
redis.call('HDEL', KEYS[4], (sec - 900) .. ':confirm', (sec - 900) .. ':inquire', (sec - 900) .. ':cancel', (sec - 900) .. ':transactions')
local states = {}
for i = 7, #ARGV, 8 do states[#states + 1] = recordOne(i) end
return states
