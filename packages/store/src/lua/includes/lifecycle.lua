--[[
  GENERATED from packages/domain/src/status.ts (PHASE_MOVES) by `npm run gen:lua`. Do not edit:
  change the table in the domain and regenerate; a test fails while this file is stale.

  canMove(from, to): whether the lifecycle allows a payment in phase `from` to move to `to`.
]]
local PHASE_MOVES = {
  queued = { confirming = true, final = true },
  confirming = { confirming = true, inquiring = true, canceling = true, final = true },
  inquiring = { confirming = true, inquiring = true, canceling = true, final = true },
  canceling = { canceling = true, inquiring = true, final = true },
  final = {  },
}
local function canMove(from, to)
  local moves = PHASE_MOVES[from]
  return moves ~= nil and moves[to] == true
end
