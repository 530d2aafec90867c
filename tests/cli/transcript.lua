--- Runs a CLI transcript (a cram-like .t file) and compares the output.
--
-- Format: a line "  $ COMMAND" (two spaces, dollar, space) runs COMMAND
-- with sh in a scratch directory shared by the whole file; the lines after
-- it that start with two spaces are its expected output (stdout and stderr
-- together); "  [N]" is its expected exit status when not 0. A line ending
-- in " (re)" is a Lua pattern matched against the whole line; a line "  ..."
-- matches any number of lines. "  > TEXT" right after the command line
-- continues the command (multi-line commands).
-- Every other line is prose. `crucible-feedback` resolves to the built
-- binary ($CF_BINARY).
--
--   crucible-feedback tests/cli/transcript.lua FILE.t
local t_path = assert(arg[1], "usage: transcript.lua FILE.t")
local binary = assert(os.getenv("CF_BINARY"), "CF_BINARY must name the built executable")

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Parse into cases: {line=, cmd=, expected={...}, status=}.
local cases, current = {}, nil
local n = 0
for line in (read(t_path) .. "\n"):gmatch("(.-)\n") do
  n = n + 1
  local cmd = line:match("^  %$ (.*)$")
  if cmd then
    current = { line = n, cmd = cmd, expected = {}, status = 0 }
    cases[#cases + 1] = current
  elseif current and #current.expected == 0 and line:match("^  > ") then
    current.cmd = current.cmd .. "\n" .. line:sub(5)
  elseif current and line:match("^  %[%d+%]$") then
    current.status = tonumber(line:match("%[(%d+)%]"))
  elseif current and line:match("^  ") then
    current.expected[#current.expected + 1] = line:sub(3)
  else
    current = nil
  end
end

local scratch = os.tmpname()
os.remove(scratch)
assert(os.execute("mkdir -p " .. q(scratch)))
local linkdir = scratch .. "/.bin"
assert(os.execute("mkdir -p " .. q(linkdir) .. " && ln -sf " .. q(binary) .. " " .. q(linkdir .. "/crucible-feedback")))

local function lines_of(s)
  local out = {}
  for l in s:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  local tail = s:match("([^\n]+)$")
  if tail then out[#out + 1] = tail end
  return out
end

local function line_matches(want, got)
  if want:sub(-5) == " (re)" then
    return got ~= nil and got:match("^" .. want:sub(1, -6) .. "$") ~= nil
  end
  return want == got
end

-- Matches expected against actual lines, with "..." as a wildcard.
local function match(exp, act, i, j)
  i, j = i or 1, j or 1
  if i > #exp then return j > #act end
  if exp[i] == "..." then
    for k = j, #act + 1 do
      if match(exp, act, i + 1, k) then return true end
    end
    return false
  end
  if j > #act or not line_matches(exp[i], act[j]) then return false end
  return match(exp, act, i + 1, j + 1)
end

local passed, failed = 0, 0
for _, c in ipairs(cases) do
  local script = scratch .. "/.cmd"
  local f = assert(io.open(script, "wb"))
  f:write("export PATH=", q(linkdir), ":\"$PATH\"\n", c.cmd, "\n")
  f:close()
  local p = assert(io.popen("cd " .. q(scratch) .. " && sh " .. q(script) .. " 2>&1 </dev/null; echo \"[exit $?]\""))
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("%[exit (%d+)%]\n?$"))
  out = out:gsub("%[exit %d+%]\n?$", "")
  local actual = lines_of(out)
  if status == c.status and match(c.expected, actual) then
    passed = passed + 1
  else
    failed = failed + 1
    io.write(("%s:%d: FAILED: %s\n"):format(t_path, c.line, c.cmd))
    io.write("  expected (status ", c.status, "):\n")
    for _, l in ipairs(c.expected) do io.write("    | ", l, "\n") end
    io.write("  got (status ", tostring(status), "):\n")
    for _, l in ipairs(actual) do io.write("    | ", l, "\n") end
  end
end
os.execute("rm -rf " .. q(scratch))
print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
