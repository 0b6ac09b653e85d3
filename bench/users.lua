-- wrk script for the filter-overhead benchmark: every request carries a different user, in
-- x-user-id and in a `session` cookie (from a pre-built list of 10,000); DELAY_MS > 0 pauses each connection that long
-- between requests, for latency at a fixed rate below saturation.
local requests, index, pause = {}, 0, 0

function init(args)
  pause = tonumber(os.getenv("DELAY_MS") or "0")
  for i = 1, 10000 do
    requests[i] = wrk.format("GET", "/", { ["x-user-id"] = "user-" .. i, ["cookie"] = "theme=dark; session=user-" .. i })
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end

if tonumber(os.getenv("DELAY_MS") or "0") > 0 then
  function delay()
    return pause
  end
end
