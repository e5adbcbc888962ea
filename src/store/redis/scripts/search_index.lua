-- The search index of a batch of merchants (see `search_index.rs`): moves
-- computed by the writer from the rows and printed grades the index held
-- when it read them, applied only if it still holds them.
-- KEYS: rows hash, counts hash, printed hash, reprint sorted set, reprint
-- counts hash. ARGV: n, then per merchant: id, the row held, the printed
-- grade held ('' for none: neither a row nor a stored grade is ever '');
-- then the moves: r, then r pairs (id, row) for the rows hash; c, then c
-- pairs (field, delta) for the counts hash; q, then q pairs (region,
-- delta) for the reprint counts; then, to the end, per sorted set (a cell
-- or the reprint list, members of score 0, keys of the same hash tag as
-- KEYS, so in the same slot): its key, m, the m members removed, a, then
-- a pairs (score, member) added. Returns 1 when applied, 0 (having written
-- nothing) when a merchant's row or printed grade is no longer the one
-- read.
local n = tonumber(ARGV[1])
if n == 0 then return 1 end
local ids = {}
for i = 1, n do ids[i] = ARGV[3 * i - 1] end
local held = redis.call('HMGET', KEYS[1], unpack(ids))
local printed = redis.call('HMGET', KEYS[3], unpack(ids))
for i = 1, n do
  if (held[i] or '') ~= ARGV[3 * i] or (printed[i] or '') ~= ARGV[3 * i + 1] then
    return 0
  end
end

-- Redis and Lua bound a call's arguments: at most this many per command
-- (even, so no score is parted from its member).
local PER_CALL = 4000
-- `cmd key ARGV[from..to]`, in calls of at most PER_CALL arguments.
local function each_call(cmd, key, from, to)
  for a = from, to, PER_CALL do
    redis.call(cmd, key, unpack(ARGV, a, math.min(a + PER_CALL - 1, to)))
  end
end
-- Adds `count` pairs (field, delta) from ARGV[at] to the hash's fields; a field
-- that comes to 0 is removed. Returns where ARGV goes on.
local function add_deltas(hash, at, count)
  for from = 0, count - 1, PER_CALL / 2 do
    local m = math.min(PER_CALL / 2, count - from)
    local fields = {}
    for j = 1, m do fields[j] = ARGV[at + 2 * (from + j) - 2] end
    local now = redis.call('HMGET', hash, unpack(fields))
    local set, del = {}, {}
    for j = 1, m do
      local v = (tonumber(now[j]) or 0) + tonumber(ARGV[at + 2 * (from + j) - 1])
      if v == 0 then
        del[#del + 1] = fields[j]
      else
        set[#set + 1] = fields[j]
        set[#set + 1] = string.format('%d', v)
      end
    end
    if #set > 0 then redis.call('HSET', hash, unpack(set)) end
    if #del > 0 then redis.call('HDEL', hash, unpack(del)) end
  end
  return at + 2 * count
end

local at = 3 * n + 2
local r = tonumber(ARGV[at])
if r > 0 then each_call('HSET', KEYS[1], at + 1, at + 2 * r) end
at = at + 1 + 2 * r
at = add_deltas(KEYS[2], at + 1, tonumber(ARGV[at]))
at = add_deltas(KEYS[5], at + 1, tonumber(ARGV[at]))
while at <= #ARGV do
  local key, m = ARGV[at], tonumber(ARGV[at + 1])
  at = at + 2
  if m > 0 then each_call('ZREM', key, at, at + m - 1) end
  at = at + m
  local a = tonumber(ARGV[at])
  at = at + 1
  if a > 0 then each_call('ZADD', key, at, at + 2 * a - 1) end
  at = at + 2 * a
end
return 1
