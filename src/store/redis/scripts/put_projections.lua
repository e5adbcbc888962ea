local n = tonumber(ARGV[1])
local cur, out = {}, {}
for i = 1, n do
  local k, a = 3 * (i - 1), 1 + 4 * (i - 1)
  local id, g = ARGV[a + 1], ARGV[a + 4]
  local before = cur[id]
  if before == nil then
    before = grade_of(redis.call('GET', KEYS[k + 1]))
  end
  cur[id] = g
  out[i] = before
  set_projection(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], id, ARGV[a + 2], ARGV[a + 3])
end
return out
