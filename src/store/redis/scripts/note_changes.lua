local items = {}
for i = 4, #ARGV, 4 do
  items[#items + 1] = {ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]}
end
note_items(KEYS, items, ARGV[1], ARGV[2], ARGV[3])
return #items
