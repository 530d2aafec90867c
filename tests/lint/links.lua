--- Checks the relative links of README.md and docs/**/*.md.
--
-- Every Markdown link (`[text](target)`, `![alt](target)`, `[ref]: target`)
-- outside code blocks and code spans whose target is not a URL must name a
-- file or directory inside the repository; a `#anchor` must match a heading
-- of the Markdown file it points at (GitHub's slugs) or an `<a id=...>`.
--
--   crucible-feedback tests/lint/links.lua ROOT
--     prints each broken link as FILE:LINE: TARGET: REASON; exits 1 if any.
--   crucible-feedback tests/lint/links.lua --expect FILE ROOT
--     the self-check: passes only when the broken links found under ROOT
--     are exactly FILE's lines (so the checker is shown to find them).
local M = {}

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The Markdown files to check, relative to root, sorted.
function M.pages(root)
  local files = {}
  if exists(root .. "/README.md") then files[#files + 1] = "README.md" end
  local p = assert(io.popen("cd '" .. root:gsub("'", "'\\''") .. "' && find docs -name '*.md' 2>/dev/null | sort"))
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

-- Lines of a Markdown text with fenced code blocks blanked out.
local function prose_lines(text)
  local lines, fence = {}, nil
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    local mark = line:match("^%s*(```+)") or line:match("^%s*(~~~+)")
    if fence then
      if mark and mark:sub(1, 1) == fence:sub(1, 1) and #mark >= #fence then fence = nil end
      lines[#lines + 1] = ""
    elseif mark then
      fence = mark
      lines[#lines + 1] = ""
    else
      lines[#lines + 1] = line
    end
  end
  return lines
end

-- GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens.
function M.slug(heading)
  local s = heading:gsub("%b<>", ""):lower()
  s = s:gsub("[^%w%s%-_\128-\255]", "")
  return (s:gsub("%s", "-"))
end

-- The anchors a Markdown file defines (headings, duplicates numbered).
local anchor_cache = {}
local function anchors(path)
  if anchor_cache[path] then return anchor_cache[path] end
  local set, seen = {}, {}
  local text = read(path) or ""
  for _, line in ipairs(prose_lines(text)) do
    local h = line:match("^#+%s+(.-)%s*#*%s*$")
    if h then
      local base = M.slug(h)
      local n = seen[base]
      set[n and (base .. "-" .. n) or base] = true
      seen[base] = (n or 0) + 1
    end
    for id in line:gmatch("<a%s+[^>]*id=\"([^\"]+)\"") do set[id] = true end
    for id in line:gmatch("<a%s+[^>]*name=\"([^\"]+)\"") do set[id] = true end
  end
  anchor_cache[path] = set
  return set
end

-- Joins a relative path to a directory; nil when it leaves the root.
local function resolve(dir, target)
  local parts = {}
  local full = target:sub(1, 1) == "/" and target:sub(2) or (dir == "" and target or dir .. "/" .. target)
  for part in full:gmatch("[^/]+") do
    if part == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end

-- The link targets of one line (code spans removed).
local function targets(line)
  local found = {}
  line = line:gsub("`+[^`]*`+", "")
  for t in line:gmatch("%]%(%s*<?([^%s%)>]*)>?[^%)]*%)") do found[#found + 1] = t end
  local ref = line:match("^%s*%[[^%]]+%]:%s+<?([^%s>]+)")
  if ref then found[#found + 1] = ref end
  return found
end

local function is_url(t)
  return t:match("^%a[%w+.-]*:") ~= nil
end

-- Why a link from file (relative to root) is broken, or nil.
function M.problem(root, file, target)
  if is_url(target) then return nil end
  local path, anchor = target:match("^([^#]*)#?(.*)$")
  local dir = file:match("^(.*)/[^/]*$") or ""
  local rel = path == "" and file or resolve(dir, path)
  if not rel then return "points outside the repository" end
  local full = root .. "/" .. rel
  if rel ~= "" and not exists(full) then return "no such file" end
  if anchor ~= "" and rel:match("%.md$") and not anchors(full)[anchor:lower()] then
    return "no heading for #" .. anchor
  end
  return nil
end

function M.check(root)
  local broken = {}
  for _, file in ipairs(M.pages(root)) do
    for n, line in ipairs(prose_lines(read(root .. "/" .. file))) do
      for _, t in ipairs(targets(line)) do
        local why = M.problem(root, file, t)
        if why then broken[#broken + 1] = string.format("%s:%d: %s: %s", file, n, t, why) end
      end
    end
  end
  return broken
end

local function main(args)
  local expect, root
  if args[1] == "--expect" then expect, root = args[2], args[3] else root = args[1] end
  if not root then
    io.stderr:write("usage: links.lua [--expect FILE] ROOT\n")
    return 2
  end
  local broken = M.check(root)
  if expect then
    local want = assert(read(expect), "cannot read " .. expect)
    local got = table.concat(broken, "\n") .. "\n"
    if got ~= want then
      io.stderr:write("links self-check: expected\n", want, "found\n", got)
      return 1
    end
    print(string.format("links self-check: the %d broken links of the fixture were found", #broken))
    return 0
  end
  for _, b in ipairs(broken) do print(b) end
  if #broken > 0 then
    print(string.format("links: %d broken links", #broken))
    return 1
  end
  print(string.format("links: %d pages checked, every relative link resolves", #M.pages(root)))
  return 0
end

os.exit(main(arg))
