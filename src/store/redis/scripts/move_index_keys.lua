local moved = 0
for i = 1, #KEYS, 2 do
  local old, new = KEYS[i], KEYS[i + 1]
  local t = redis.call('TYPE', old)['ok']
  if t == 'set' then
    redis.call('SUNIONSTORE', new, new, old)
  elseif t == 'zset' then
    redis.call('ZUNIONSTORE', new, 2, new, old, 'AGGREGATE', 'MAX')
  elseif t == 'hash' then
    local kv = redis.call('HGETALL', old)
    for j = 1, #kv, 2 do
      redis.call('HSETNX', new, kv[j], kv[j + 1])
    end
  end
  if t ~= 'none' then
    redis.call('DEL', old)
    moved = moved + 1
  end
end
return moved
