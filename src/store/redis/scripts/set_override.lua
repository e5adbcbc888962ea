if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
set_projection(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
if #KEYS > 4 then
  audit(KEYS[5], KEYS[6], ARGV[5])
  note_changes(KEYS[7], KEYS[8], {ARGV[2]}, ARGV[6])
end
return 1
