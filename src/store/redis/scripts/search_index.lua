-- The search index of a batch of merchants (see `search_index.rs`).
-- KEYS: rows hash, counts hash, printed hash, reprint sorted set, reprint
-- counts hash. ARGV: the cell keys' prefix, the credit-code keys' prefix,
-- n, then per merchant: id, row. A row is region, grade, kind, categories
-- (each followed by \31), credit code and name, joined by \30. The cell
-- and credit-code keys are named here from their prefixes: they carry the
-- same hash tag as KEYS, so they live in the same slot.
local SEP, CAT = '\30', '\31'
local function fields(row)
  local f = {}
  for part in string.gmatch(row .. SEP, '(.-)' .. SEP) do f[#f + 1] = part end
  return f
end
local function add(hash, field, by)
  if redis.call('HINCRBY', hash, field, by) == 0 then redis.call('HDEL', hash, field) end
end
local function count(f, by)
  local cell = f[1] .. '|' .. f[2] .. '|' .. f[3] .. '|'
  add(KEYS[2], cell, by)
  local seen = {}
  for c in string.gmatch(f[4], '(.-)' .. CAT) do
    if c ~= '' and not seen[c] then
      seen[c] = true
      add(KEYS[2], cell .. c, by)
    end
  end
end
local function reprint(id, f, by)
  local printed = redis.call('HGET', KEYS[3], id)
  if printed and printed ~= f[2] then
    if by > 0 then redis.call('ZADD', KEYS[4], 0, id) else redis.call('ZREM', KEYS[4], id) end
    add(KEYS[5], f[1], by)
  end
end
local function place(id, f, by)
  local cell = ARGV[1] .. f[1] .. ':' .. f[2] .. ':' .. f[3]
  if by > 0 then
    redis.call('ZADD', cell, 0, id)
    if f[5] ~= '' then redis.call('SADD', ARGV[2] .. f[5], id) end
  else
    redis.call('ZREM', cell, id)
    if f[5] ~= '' then redis.call('SREM', ARGV[2] .. f[5], id) end
  end
  count(f, by)
  reprint(id, f, by)
end
local n = tonumber(ARGV[3])
for i = 1, n do
  local id, row = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local old = redis.call('HGET', KEYS[1], id)
  if old ~= row then
    if old then place(id, fields(old), -1) end
    redis.call('HSET', KEYS[1], id, row)
    place(id, fields(row), 1)
  end
end
return n
