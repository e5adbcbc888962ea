if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
local st = redis.call('HGETALL', KEYS[2])
for i = 1, #st, 2 do
  if st[i + 1] == 'active' then
    redis.call('HSET', KEYS[2], st[i], 'superseded')
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if #KEYS > 2 then
  if ARGV[5] ~= '' then
    audit(KEYS[3], KEYS[4], ARGV[5])
  end
  note_items({KEYS[5], KEYS[6], KEYS[7], KEYS[8]}, {{ARGV[4], 'code_issued', '', ARGV[1]}},
    ARGV[6], ARGV[7], ARGV[8])
end
return 1
