--[[
  books(stream, paymentHash, id, event, intakeBody): the books' half of every change of a
  payment, in the same atomic step that makes it. Every script that changes a payment includes
  this file and calls it last, so no state change can miss the books:
  - the payment's version `v` goes up by one;
  - the whole payment at that version (every field, as strings), the event that made it (a table
    with its time `at`), and on intake the 202 body, are appended to the books stream, which the
    drainer (apps/drainer) writes to PostgreSQL. A snapshot, not a difference: applying it twice,
    or after a newer one, changes nothing.
]]
local function books(stream, paymentHash, id, event, intakeBody)
  local v = redis.call('HINCRBY', paymentHash, 'v', 1)
  local flat = redis.call('HGETALL', paymentHash)
  local snapshot = {}
  for i = 1, #flat, 2 do snapshot[flat[i]] = flat[i + 1] end
  if intakeBody then
    redis.call('XADD', stream, '*', 'k', 'p', 'id', id, 'v', v, 's', cjson.encode(snapshot), 'e', cjson.encode(event), 'b', intakeBody)
  else
    redis.call('XADD', stream, '*', 'k', 'p', 'id', id, 'v', v, 's', cjson.encode(snapshot), 'e', cjson.encode(event))
  end
end

-- history(list, retention, stream, paymentHash, id, event): a change of a payment recorded in its
-- history (the latest 100, kept `retention` ms) and then in the books, as books() above.
local function history(list, retention, stream, paymentHash, id, event)
  redis.call('RPUSH', list, cjson.encode(event))
  redis.call('LTRIM', list, -100, -1)
  redis.call('PEXPIRE', list, retention)
  books(stream, paymentHash, id, event)
end
