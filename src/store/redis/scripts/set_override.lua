local before = grade_of(redis.call('GET', KEYS[2]))
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
set_projection(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
if #KEYS > 4 then
  audit(KEYS[5], KEYS[6], ARGV[5])
  local items = {projection_note(ARGV[2], before, ARGV[7]), {ARGV[2], 'override', ARGV[7], ''}}
  note_items({KEYS[7], KEYS[8], KEYS[9], KEYS[10]}, items, ARGV[6], ARGV[8], ARGV[9])
end
return before
