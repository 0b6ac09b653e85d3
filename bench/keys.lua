-- wrk script for the balance benchmark: sends each key k0 .. k{KEYS-1} once, to the path given
-- as the first script argument, in the x-affinity-key header; records which backend answered
-- (x-backend) for each key (echoed back by the backend in x-affinity-key-seen), and writes
-- "key backend" lines to OUT and exits after the last one. Run with one thread (-t1).
local keys, path, counter, answered = 0, "/", 0, 0
results = {}

function init(args)
  keys = tonumber(os.getenv("KEYS"))
  path = args[1]
end

function request()
  -- wrk calls request() once before the run to probe it; that call gets the idle request, so
  -- k0 is really sent whether or not the probe happens.
  local key = counter - 1
  counter = counter + 1
  if key < 0 or key >= keys then
    -- Every key sent: idle until the outstanding responses arrive.
    return wrk.format("GET", "/__idle", {})
  end
  return wrk.format("GET", path, { ["x-affinity-key"] = "k" .. key })
end

function response(status, headers, body)
  local key = headers["x-affinity-key-seen"]
  if key and key ~= "" and not results[key] then
    results[key] = headers["x-backend"] or ("status-" .. status)
    answered = answered + 1
    if answered == keys then
      -- Every key answered: write the results and end wrk (thread:stop() does not end the run).
      local out = assert(io.open(os.getenv("OUT"), "w"))
      for k, backend in pairs(results) do
        out:write(k, " ", backend, "\n")
      end
      out:close()
      os.exit(0)
    end
  end
end
