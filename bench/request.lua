-- wrk script of bench/peers.py's measured runs: sends the case's request,
-- and nothing else, so that wrk spends no time in Lua per response.
--   wrk ... -s request.lua URL -- METHOD REQUEST_BODY_FILE
-- (REQUEST_BODY_FILE "-" = no body). check.lua builds on it.
local request = {}

function request.slurp(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

function request.setup(args)
   wrk.method = args[1]
   if args[2] ~= "-" then
      wrk.body = request.slurp(args[2])
      wrk.headers["Content-Type"] = "application/octet-stream"
   end
end

function init(args)
   request.setup(args)
end

return request
