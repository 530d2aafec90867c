--- crucible.error_text: caps the error texts we store (workflow run
-- errors, trigger policy errors and action results, curation strategy
-- failures), so a script that raises a huge message cannot bloat a row.
--
--   local error_text = require "crucible.error_text"
--   error_text.cap(msg)        --> msg, or its first bytes and a marker
local M = {}

--- The most bytes of an error text that are kept (4 KiB).
M.MAX_BYTES = 4096

--- What ends a cut text.
M.MARKER = " [... cut: %d more bytes]"

--- s (made a string) when it fits in max bytes (default MAX_BYTES); else
-- its first bytes, cut on a UTF-8 character boundary, and the marker
-- saying how many bytes were dropped. The result never exceeds max bytes
-- plus the marker.
function M.cap(s, max)
  s = type(s) == "string" and s or tostring(s)
  max = max or M.MAX_BYTES
  if #s <= max then return s end
  local cut = max
  -- back off continuation bytes (10xxxxxx) so a character is never split
  while cut > 0 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
  return s:sub(1, cut) .. M.MARKER:format(#s - cut)
end

return M
