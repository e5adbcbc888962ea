local out = {}
for i = 1, #KEYS do
  local field, owner = ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('HSETNX', KEYS[i], field, owner) == 1 then
    out[i] = 1
  elseif redis.call('HGET', KEYS[i], field) == owner then
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
