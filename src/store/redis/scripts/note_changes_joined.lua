note_joined(KEYS[1], KEYS[2], tonumber(ARGV[2]), ARGV[3], ARGV[1])
return tonumber(ARGV[2])
