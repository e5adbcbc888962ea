local function note_joined(stream, seq, n, joined, keep)
  if n == 0 then return end
  local total = redis.call('INCRBY', seq, n)
  local oldest = math.max(total - tonumber(keep), 0)
  redis.call('XADD', stream, 'MINID', '~', string.format('%d', oldest), string.format('%d-0', total),
    'n', n, 'm', joined)
end
local function note_changes(stream, seq, ids, keep)
  note_joined(stream, seq, #ids, table.concat(ids, ','), keep)
end
local function audit(log, by_target, entry)
  redis.call('RPUSH', log, entry)
  redis.call('RPUSH', by_target, entry)
end
local function set_projection(pkey, dirty, due, id, json, score)
  redis.call('SET', pkey, json)
  redis.call('SREM', dirty, id)
  if score == '' then
    redis.call('ZREM', due, id)
  else
    redis.call('ZADD', due, score, id)
  end
end
