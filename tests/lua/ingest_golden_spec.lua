local support = require "support"

-- What the pipeline stores must not change when it is made faster: a fixed
-- corpus (bench-like events with PII, and metadata in every JSON shape the
-- parser meets: whitespace, floats, big integers, escapes, raw UTF-8,
-- nesting, duplicates, invalid text) is ingested twice by the binary under
-- test and the rows are compared, byte for byte, with the dump the binary
-- before the speed-ups made (fixtures/ingest_golden.out, written by
-- fixtures/ingest_golden.sh).
describe("ingest golden corpus", function()
  it("stores the same rows and says the same about rejected lines", function()
    local fixtures = support.SOURCE_DIR .. "/tests/lua/fixtures/"
    local p = assert(io.popen("bash " .. support.q(fixtures .. "ingest_golden.sh") .. " "
      .. support.q(support.BINARY)))
    local got = p:read("a")
    p:close()
    local want = support.read_file(fixtures .. "ingest_golden.out")
    if got ~= want then
      -- the first differing line, so a failure says what moved
      local gl, wl, n = {}, {}, 0
      for l in (got .. "\n"):gmatch("(.-)\n") do gl[#gl + 1] = l end
      for l in (want .. "\n"):gmatch("(.-)\n") do wl[#wl + 1] = l end
      repeat n = n + 1 until gl[n] ~= wl[n]
      error(("line %d differs:\n  got:  %s\n  want: %s"):format(n, tostring(gl[n]),
        tostring(wl[n])))
    end
  end)
end)
