local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then
  return false
end
local before = redis.call('HGET', KEYS[2], ARGV[1]) or ''
local was = before
if was == '' then
  was = cjson.decode(json)['status']
end
if was == 'revoked' then
  return {json, before}
end
redis.call('HSET', KEYS[2], ARGV[1], 'revoked')
if #KEYS > 2 then
  audit(KEYS[3], KEYS[4], ARGV[3])
  note_items({KEYS[5], KEYS[6], KEYS[7], KEYS[8]}, {{ARGV[2], 'code_revoked', '', ARGV[1]}},
    ARGV[4], ARGV[5], ARGV[6])
end
return {json, before}
