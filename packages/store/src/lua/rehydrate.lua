--[[
  Rehydrate: puts a payment the books hold back into Redis, as the books hold it, when Redis has
  forgotten it (past its hot window), so that reconciliation checks and repairs it on the one path
  every payment takes (apply-step.lua's repair, which also appends the repaired version to the
  books). Nothing is overwritten: a payment Redis still holds is left as it is.

  KEYS[1] payment hash
  ARGV[1] the payment as the books hold it (one JSON object of string values)
  ARGV[2] how long Redis keeps it (ms): the hot window

  Returns 1 if it was put back, 0 if Redis held it.
]]
--@include payment-hash

if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
writePaymentHash(KEYS[1], ARGV[1], tonumber(ARGV[2]))
return 1
