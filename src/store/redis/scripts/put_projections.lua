local n = tonumber(ARGV[1])
local ids = {}
for i = 1, n do
  local k, a = 3 * (i - 1), 1 + 3 * (i - 1)
  set_projection(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
  ids[i] = ARGV[a + 1]
end
if #KEYS > 3 * n then
  note_changes(KEYS[3 * n + 1], KEYS[3 * n + 2], ids, ARGV[3 * n + 2])
end
return n
