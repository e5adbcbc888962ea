local mark = ARGV[1] == '1'
local b = tonumber(ARGV[2])
local nk = mark and 2 or 1
local n = (#ARGV - 2) / 4
local groups = {}
for i = 1, n do
  local s = tonumber(ARGV[4 * i - 1])
  local g = groups[s]
  if not g then
    g = {}
    groups[s] = g
  end
  g[#g + 1] = i
end
local fresh = {}
for s, g in pairs(groups) do
  local ids = {}
  for j, i in ipairs(g) do
    ids[j] = ARGV[4 * i]
  end
  local seen = redis.call('SMISMEMBER', KEYS[s], unpack(ids))
  local new = {}
  for j, i in ipairs(g) do
    if seen[j] == 0 then
      fresh[i] = true
      new[#new + 1] = ids[j]
    end
  end
  if #new > 0 then
    redis.call('SADD', KEYS[s], unpack(new))
  end
end
local out = {}
for i = 1, n do
  if fresh[i] then
    local k = b + nk * (i - 1)
    redis.call('RPUSH', KEYS[k + 1], ARGV[4 * i + 2])
    if mark then
      redis.call('SADD', KEYS[k + 2], ARGV[4 * i + 1])
    end
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)
