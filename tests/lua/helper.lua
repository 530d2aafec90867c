-- busted --helper: makes tests/lua/support.lua requirable as "support".
local src = os.getenv("CF_SOURCE_DIR") or "."
package.path = src .. "/tests/lua/?.lua;" .. package.path
