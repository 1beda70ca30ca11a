-- wrk script of bench/peers.py's warm-up runs: request.lua's request, and
-- every answer checked: 200 with exactly the expected body.
--   wrk ... -s check.lua URL -- METHOD REQUEST_BODY_FILE EXPECTED_BODY_FILE
-- Run it from bench/ (require finds request.lua there). At the end it
-- prints "check: good N bad M" and, when M > 0, the first bad status and body.
local request = require "request"
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   request.setup(args)
   expected = request.slurp(args[3])
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
