--[[
  writePaymentHash(key, json, ttlMs): writes a payment's hash from its JSON form (one object of
  string values, as the store sends a new payment and the books hold one) and sets how long Redis
  keeps it. One argument instead of a field list: ioredis encodes each argument, and the intake
  is the hot path. create-payment.lua (a new payment) and rehydrate.lua (one the books give back)
  include it.
]]
local function writePaymentHash(key, json, ttlMs)
  local fields = {}
  for k, v in pairs(cjson.decode(json)) do
    fields[#fields + 1] = k
    fields[#fields + 1] = v
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, ttlMs)
end
