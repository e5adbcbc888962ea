local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == 'absent' and current then
  return 0
end
if ARGV[2] == 'equals' and current ~= ARGV[3] then
  return 0
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
  return 1
end
return redis.call('HDEL', KEYS[1], ARGV[1])
