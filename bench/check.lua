-- wrk script used by http_bench.py: counts every response that is not
-- 200 with the exact body "Hello, world!" and prints the totals at the end
-- as "check: good N bad M" (plus the first bad status/body seen).
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   good, bad, first_bad = 0, 0, ""
end

function response(status, headers, body)
   if status == 200 and body == "Hello, world!" then
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
