--- Process-wide settings given on the command line.
-- crucible.cli fills `options` before any user code runs; crucible (the
-- public module) reads them when it builds its default instance.
local M = {}

--- The command line's global options: config (path), db (URL).
M.options = {}

return M
