local function grade_of(json)
  if not json then return '' end
  return string.match(json, '"grade":"(%a+)"') or ''
end
local function projection_note(id, before, after)
  if before == after then return {id, '', '', ''} end
  return {id, 'grade', after, ''}
end
local function trim_feed(feed, kept, cutoff)
  local oldest = redis.call('XRANGE', feed, '-', '+', 'COUNT', 64)
  local last = nil
  for _, e in ipairs(oldest) do
    local f = e[2]
    local at = nil
    for i = 1, #f, 2 do
      if f[i] == 'at' then at = tonumber(f[i + 1]) end
    end
    if at == nil or at >= cutoff then break end
    last = tonumber(string.match(e[1], '^(%d+)'))
  end
  if last then
    redis.call('XTRIM', feed, 'MINID', string.format('%d-0', last + 1))
    redis.call('SET', kept, string.format('%d', last))
  end
end
local function note_items(log, items, keep, at, cutoff)
  local n = #items
  if n == 0 or keep == '-1' then return end
  local total = redis.call('INCRBY', log[2], n)
  local first = total - n
  local ids, public = {}, false
  for i = 1, n do
    local it = items[i]
    ids[i] = it[1]
    if it[2] ~= '' then
      public = true
      redis.call('XADD', log[3], string.format('%d-0', first + i), 'at', at, 'm', it[1],
        'k', it[2], 'g', it[3], 's', it[4])
    end
  end
  local oldest = math.max(total - tonumber(keep), 0)
  redis.call('XADD', log[1], 'MINID', '~', string.format('%d', oldest), string.format('%d-0', total),
    'n', n, 'm', table.concat(ids, ','))
  if public then trim_feed(log[3], log[4], tonumber(cutoff)) end
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
