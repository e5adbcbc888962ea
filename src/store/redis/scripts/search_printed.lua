-- The grade printed on a merchant's active code, and the reprint list.
-- KEYS: rows hash, printed hash, reprint sorted set, reprint counts hash.
-- ARGV: id, the printed grade ('' when no code is active).
local id, printed = ARGV[1], ARGV[2]
local old = redis.call('HGET', KEYS[2], id)
if printed == '' then
  redis.call('HDEL', KEYS[2], id)
else
  redis.call('HSET', KEYS[2], id, printed)
end
local row = redis.call('HGET', KEYS[1], id)
if row then
  local region, grade = string.match(row, '^(.-)\30(.-)\30')
  local was = (old and old ~= grade) and true or false
  local now = printed ~= '' and printed ~= grade
  if was ~= now then
    local by = now and 1 or -1
    if now then redis.call('ZADD', KEYS[3], 0, id) else redis.call('ZREM', KEYS[3], id) end
    if redis.call('HINCRBY', KEYS[4], region, by) == 0 then redis.call('HDEL', KEYS[4], region) end
  end
end
return 1
