local mark = ARGV[1] == '1'
local n, g = tonumber(ARGV[2]), tonumber(ARGV[3])
local per = mark and 2 or 1
local old = redis.call('MGET', unpack(KEYS, 1, n))
local cur, set, members, out, notes = {}, {}, {}, {}, {}
for s = 1, g do
  members[s] = {}
end
for i = 1, n do
  local a = 1 + 3 * i
  local id, json, k = ARGV[a], ARGV[a + 1], KEYS[i]
  local before = cur[k]
  if before == nil then
    before = old[i]
  end
  if before ~= json then
    cur[k] = json
    set[#set + 1] = k
    set[#set + 1] = json
    local m = members[tonumber(ARGV[a + 2])]
    m[#m + 1] = id
    out[i] = '1'
    notes[#notes + 1] = {id, 'merchant', '', ''}
  else
    out[i] = '0'
  end
end
if #set > 0 then
  redis.call('MSET', unpack(set))
end
for s = 1, g do
  local m = members[s]
  if #m > 0 then
    local k = n + per * (s - 1)
    redis.call('SADD', KEYS[k + 1], unpack(m))
    if mark then
      redis.call('SADD', KEYS[k + 2], unpack(m))
    end
  end
end
local t = n + per * g
if #KEYS > t then
  local a = 4 + 3 * n
  note_items({KEYS[t + 1], KEYS[t + 2], KEYS[t + 3], KEYS[t + 4]}, notes, ARGV[a], ARGV[a + 1], ARGV[a + 2])
end
return table.concat(out)
