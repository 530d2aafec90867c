--- `serve` while its database stops taking writes: another process holds
-- SQLite's write lock while batches arrive. Every batch is acknowledged
-- (the buffer holds it), the server keeps answering, and once the lock is
-- released every acknowledged event is written; SIGTERM then exits 0.
local support = require "support"
local cjson = require "cjson"
local S = require "serve_harness"

describe("serve when the database goes away mid-batch", function()
  local h
  after_each(function() S.cleanup(h) end)

  it("keeps what it acknowledged and writes it once the database is back", function()
    h = S.start("ingestion = { flush_interval = 50 }")
    local release = h.dir .. "/release"
    -- the lock: held until the file `release` appears (at most 30 s)
    assert(os.execute(("(echo 'BEGIN EXCLUSIVE;'; i=0; while [ ! -f %s ] && [ $i -lt 600 ];"
      .. " do sleep 0.05; i=$((i+1)); done; echo 'COMMIT;') | sqlite3 %s >/dev/null 2>&1 &")
      :format(support.q(release), support.q(h.dir .. "/t.db"))))
    assert.truthy(S.wait_until(function()
      return (S.curl(h, "/readyz")) == 503
    end, 10), "the lock was not taken")
    local ids = {}
    for b = 1, 5 do
      local batch = {}
      for i = 1, 20 do
        batch[i] = { deployment_id = "d", prompt = ("p %d.%d"):format(b, i), response = "r" }
      end
      local code, resp = S.post(h, "/api/v1/events", "application/json", cjson.encode(batch))
      assert.equals(200, code, resp)
      for _, id in ipairs(cjson.decode(resp).ids) do ids[#ids + 1] = id end
    end
    assert.equals(100, #ids)
    assert.equals(200, (S.curl(h, "/healthz")))
    -- held, not written, while the lock lasts
    local _, metrics = S.curl(h, "/metrics")
    assert.equals("100", metrics:match("\ncrucible_buffer_depth (%d+)"))
    assert.equals("0", S.sql(h, "SELECT count(*) FROM inference_events"))
    support.write_file(release, "")
    assert.truthy(S.wait_until(function()
      return S.sql(h, "SELECT count(*) FROM inference_events") == "100"
    end, 30), "the acknowledged events were not all written")
    assert.equals(0, S.stop(h))
    local stored = {}
    for _, ev in ipairs(S.events(h)) do stored[ev.id] = true end
    for _, id in ipairs(ids) do assert.is_true(stored[id], id) end
  end)
end)
