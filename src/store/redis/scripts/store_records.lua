local mark = ARGV[1] == '1'
local nk = mark and 2 or 1
local head = '{"id":"'
local out = {}
for i = 1, (#ARGV - 1) / 5 do
  local k, a = nk * (i - 1), 5 * i - 3
  local stored = false
  if ARGV[a] ~= '1' then
    local prefix, id = ARGV[a + 3], ARGV[a + 4]
    for _, e in ipairs(redis.call('LRANGE', KEYS[k + 1], 0, -1)) do
      if string.sub(e, 1, #prefix) == prefix then
        stored = true
        break
      end
      if string.sub(e, 1, #head) ~= head or not string.find(e, '^[^"\\]*"', #head + 1) then
        local ok, v = pcall(cjson.decode, e)
        if ok and type(v) == 'table' and v.id == id then
          stored = true
          break
        end
      end
    end
  end
  if stored then
    out[i] = '0'
  else
    redis.call('RPUSH', KEYS[k + 1], ARGV[a + 2])
    if mark then
      redis.call('SADD', KEYS[k + 2], ARGV[a + 1])
    end
    out[i] = '1'
  end
end
return table.concat(out)
