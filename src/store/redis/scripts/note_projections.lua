local n = tonumber(ARGV[4])
local cur, items = {}, {}
local stored = n > 0 and redis.call('MGET', unpack(KEYS, 1, n)) or {}
for i = 1, n do
  local id, g = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local before = cur[id]
  if before == nil then
    before = grade_of(stored[i])
  end
  cur[id] = g
  items[i] = projection_note(id, before, g)
end
note_items({KEYS[n + 1], KEYS[n + 2], KEYS[n + 3], KEYS[n + 4]}, items, ARGV[1], ARGV[2], ARGV[3])
return n
