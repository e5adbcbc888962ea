local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
note_changes(KEYS[1], KEYS[2], ids, ARGV[1])
return 1
