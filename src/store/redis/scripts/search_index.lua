-- The search index of a batch of merchants (see `search_index.rs`).
-- KEYS: rows hash, counts hash, printed hash, reprint sorted set, reprint
-- counts hash. ARGV: the cell keys' prefix, the credit-code keys' prefix,
-- n, then per merchant: id, row. A row is region, grade, kind, categories
-- (each followed by \31), credit code and name, joined by \30. The cell
-- and credit-code keys are named here from their prefixes: they carry the
-- same hash tag as KEYS, so they live in the same slot.
--
-- The batch is read with two HMGETs and written with one command per key
-- it touches (not a few per merchant): what each merchant's change moves
-- is gathered first, a member's last move in the batch winning, as if the
-- merchants were indexed one after another.
local SEP, CAT = '\30', '\31'
local find, sub = string.find, string.sub
local function fields(row)
  local f, from = {}, 1
  while true do
    local at = find(row, SEP, from, true)
    if not at then
      f[#f + 1] = sub(row, from)
      return f
    end
    f[#f + 1] = sub(row, from, at - 1)
    from = at + 1
  end
end

local n = tonumber(ARGV[3])
if n == 0 then return 0 end
local ids = {}
for i = 1, n do ids[i] = ARGV[2 + 2 * i] end
local held = redis.call('HMGET', KEYS[1], unpack(ids))
local printed_list = redis.call('HMGET', KEYS[3], unpack(ids))

-- The row each merchant has so far (a merchant may come twice) and the
-- grade printed on its active code.
local current, printed = {}, {}
for i = 1, n do
  if current[ids[i]] == nil then current[ids[i]] = held[i] end
  printed[ids[i]] = printed_list[i]
end

-- key → member → true (add) / false (remove); hash → field → delta.
local zsets, sets, deltas = {}, {}, {}
local zset_keys, set_keys, delta_keys = {}, {}, {}
-- The table of `key` in `kind`, made (and `key` listed) on first use.
local function of(kind, keys, key)
  local t = kind[key]
  if not t then
    t = {}
    kind[key] = t
    keys[#keys + 1] = key
  end
  return t
end
local function move(kind, keys, key, member, present)
  of(kind, keys, key)[member] = present
end
local function add(hash, field, by)
  local d = of(deltas, delta_keys, hash)
  d[field] = (d[field] or 0) + by
end
local function count(f, by)
  local cell = f[1] .. '|' .. f[2] .. '|' .. f[3] .. '|'
  add(KEYS[2], cell, by)
  local seen = {}
  local cats, from = f[4], 1
  while true do
    local at = find(cats, CAT, from, true)
    if not at then break end
    local c = sub(cats, from, at - 1)
    if c ~= '' and not seen[c] then
      seen[c] = true
      add(KEYS[2], cell .. c, by)
    end
    from = at + 1
  end
end
local function place(id, f, by)
  local present = by > 0
  move(zsets, zset_keys, ARGV[1] .. f[1] .. ':' .. f[2] .. ':' .. f[3], id, present)
  if f[5] ~= '' then move(sets, set_keys, ARGV[2] .. f[5], id, present) end
  count(f, by)
  local p = printed[id]
  if p and p ~= f[2] then
    move(zsets, zset_keys, KEYS[4], id, present)
    add(KEYS[5], f[1], by)
  end
end

-- The merchants whose row changed (each once); `current` has their rows.
local changed, listed = {}, {}
for i = 1, n do
  local id, row = ids[i], ARGV[3 + 2 * i]
  local old = current[id]
  if old ~= row then
    if old then place(id, fields(old), -1) end
    place(id, fields(row), 1)
    current[id] = row
    if not listed[id] then
      listed[id] = true
      changed[#changed + 1] = id
    end
  end
end

-- Redis and Lua bound a call's arguments: at most this many per command.
local PER_CALL = 4000
local function each_call(cmd, key, args)
  for from = 1, #args, PER_CALL do
    redis.call(cmd, key, unpack(args, from, math.min(from + PER_CALL - 1, #args)))
  end
end
for _, key in ipairs(zset_keys) do
  local adds, rems = {}, {}
  for member, present in pairs(zsets[key]) do
    if present then
      adds[#adds + 1] = 0
      adds[#adds + 1] = member
    else
      rems[#rems + 1] = member
    end
  end
  if #rems > 0 then each_call('ZREM', key, rems) end
  if #adds > 0 then each_call('ZADD', key, adds) end
end
for _, key in ipairs(set_keys) do
  local adds, rems = {}, {}
  for member, present in pairs(sets[key]) do
    if present then adds[#adds + 1] = member else rems[#rems + 1] = member end
  end
  if #rems > 0 then each_call('SREM', key, rems) end
  if #adds > 0 then each_call('SADD', key, adds) end
end
for _, hash in ipairs(delta_keys) do
  for field, by in pairs(deltas[hash]) do
    if by ~= 0 and redis.call('HINCRBY', hash, field, by) == 0 then
      redis.call('HDEL', hash, field)
    end
  end
end
if #changed > 0 then
  local args = {}
  for _, id in ipairs(changed) do
    args[#args + 1] = id
    args[#args + 1] = current[id]
  end
  each_call('HSET', KEYS[1], args)
end
return n
