--[[
  Renews the outbox markers of payments a worker is sending (apps/worker/src/first-sends.ts): a
  marker is the lease of the worker that admitted the payment, and the sweeper takes the payment
  over once its marker is older than the lease. On Redis's clock, as admit.lua wrote it, so that
  a worker's clock running behind never makes a live lease look lapsed.

  A marker already gone (the step ended, or the sweeper took the payment) is not written again.

  KEYS[1] outbox zset
  ARGV    payment ids

  Returns how many markers were renewed.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 0
for i = 1, #ARGV do
  n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', now, ARGV[i])
end
return n
