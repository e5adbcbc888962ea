-- wrk script: GET a random code among the paths listed in the file given as
-- the first script argument (one path per line, e.g. /api/v1/scan/<token>).
local paths = {}

init = function(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
