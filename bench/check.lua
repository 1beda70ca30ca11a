-- wrk script of bench/peers.py: sends the request the case needs and checks
-- every answer is 200 with exactly the expected body.
--   wrk ... -s check.lua URL -- METHOD REQUEST_BODY_FILE EXPECTED_BODY_FILE
-- (REQUEST_BODY_FILE "-" = no body). At the end it prints
-- "check: good N bad M" and, when M > 0, the first bad status and body.
local threads = {}

local function slurp(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   wrk.method = args[1]
   if args[2] ~= "-" then
      wrk.body = slurp(args[2])
      wrk.headers["Content-Type"] = "application/octet-stream"
   end
   expected = slurp(args[3])
   good, bad, first_bad = 0, 0, ""
end

function response(status, headers, body)
   if status == 200 and body == expected then
      good = good + 1
   else
      bad = bad + 1
      if first_bad == "" then
         first_bad = status .. " " .. string.sub(body or "", 1, 60)
      end
   end
end

function done(summary, latency, requests)
   local g, b, first = 0, 0, ""
   for _, t in ipairs(threads) do
      g = g + t:get("good")
      b = b + t:get("bad")
      local f = t:get("first_bad")
      if first == "" and f and f ~= "" then first = f end
   end
   io.write(string.format("check: good %d bad %d\n", g, b))
   if b > 0 then
      io.write("check-first-bad: " .. string.gsub(first, "\n", " ") .. "\n")
   end
end
