#!/bin/sh
# Self-test of fn_length.sh on a generated tree: 81-line functions (C and
# Lua, named or not, header on one line or two) are reported, 80-line ones
# are not, allow-listed ones are not, a stale allow-list entry is, files
# outside the checked places are not, an entry only
# resembling an offender's name does not allow it; with everything allowed
# it passes.
#
#   fn_length_selftest.sh SOURCE_DIR
src=$(cd "${1:-.}" && pwd) || exit 2
checker=$src/tests/lint/fn_length.sh
t=$(mktemp -d) || exit 2
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/src/room" "$t/tools" "$t/lua/crucible" "$t/examples" "$t/scripts/lib" "$t/tests/lint"

# filler N PREFIX: N statement lines
filler() {
  i=0
  while [ "$i" -lt "$1" ]; do
    echo "$2"
    i=$((i + 1))
  done
}
# at FILE: the number the next line appended to FILE will have
at() { echo $(($(wc -l <"$1") + 1)); }
# c_fn FILE HEADER... : a C function of 81 lines ('{' to '}'), or 80 with FITS=1
c_fn() {
  f=$1
  shift
  for h in "$@"; do echo "$h"; done >>"$f"
  open=$(at "$f")
  { echo "{"; filler $((79 - ${FITS:-0})) "    x++;"; echo "}"; echo; } >>"$f"
  echo "$open"
}
# lua_fn FILE HEADER [CLOSE]: a Lua function of 81 lines (header to end), or 80 with FITS=1
lua_fn() {
  first=$(at "$1")
  { echo "$2"; filler $((79 - ${FITS:-0})) "  x = x + 1"; echo "${3:-end}"; } >>"$1"
  echo "$first"
}

c=$t/src/room/a.c
echo "static int x;" >"$c"
echo "static int long_one(void);" >>"$c"
l_long=$(c_fn "$c" "static int long_one(void)")
FITS=1 c_fn "$c" "int just_fits(void)" >/dev/null
l_split=$(c_fn "$c" "void *split_header(int a," "                   int b)")
echo "static const int table[] =" >>"$c"
echo "{1, 2};" >>"$c"
echo "static int x;" >"$t/tools/t.c"
c_fn "$t/tools/t.c" "int allowed_long(void)" >/dev/null
echo "static int x;" >"$t/src/room/fits.h"
FITS=1 c_fn "$t/src/room/fits.h" "static inline int fits_in_header(void)" >/dev/null

m=$t/lua/crucible/m.lua
printf 'local M = {}\nlocal x = 0\n' >"$m"
l_lua=$(lua_fn "$m" "local function long_lua()")
FITS=1 lua_fn "$m" "M.fits = function()" >/dev/null
l_field=$(lua_fn "$m" "M.long_field = function()")
printf 'return M, long_lua\n' >>"$m"
s=$t/scripts/s.lua
printf 'local x = 0\nlocal t = {2, 1}\n' >"$s"
l_anon=$(lua_fn "$s" "table.sort(t, function(a, b)" "return a < b end)")
e=$t/examples/e.lua
printf 'local M = {}\nlocal x = 0\n' >"$e"
FITS=1 lua_fn "$e" "function M.fits()" >/dev/null
printf 'return M\n' >>"$e"
printf 'local x = 0\n' >"$t/scripts/lib/nested.lua" # only scripts/*.lua is checked
lua_fn "$t/scripts/lib/nested.lua" "local function ignored()" >/dev/null

printf '# known offenders\ntools/t.c:allowed_long\n\nsrc/room/a.c:long_one_old\n' >"$t/tests/lint/fn_length.allow"
lim="(the limit is 80: split it into named helpers)"
cat >"$t/expected" <<EOF
src/room/a.c:$l_long: long_one is 81 lines $lim
src/room/a.c:$l_split: split_header is 81 lines $lim
lua/crucible/m.lua:$l_lua: long_lua is 81 lines $lim
lua/crucible/m.lua:$l_field: M.long_field is 81 lines $lim
scripts/s.lua:$l_anon: function@$l_anon is 81 lines $lim
src/room/a.c:long_one_old: listed in tests/lint/fn_length.allow but not over 80 lines: remove it from the list
EOF

status=0
(cd "$t" && sh "$checker" . >"$t/got" 2>&1)
rc=$?
if [ "$rc" -ne 1 ]; then
  echo "fn_length_selftest: the checker exited $rc on offenders (expected 1)"
  status=1
fi
sort "$t/expected" >"$t/expected.sorted"
sort "$t/got" >"$t/got.sorted"
if ! diff "$t/expected.sorted" "$t/got.sorted"; then
  echo "fn_length_selftest: the report differs from the expected one (- expected, + got)"
  status=1
fi

{
  echo "tools/t.c:allowed_long"
  echo "src/room/a.c:long_one"
  echo "src/room/a.c:split_header"
  echo "lua/crucible/m.lua:long_lua"
  echo "lua/crucible/m.lua:M.long_field"
  echo "scripts/s.lua:function@$l_anon"
} >"$t/tests/lint/fn_length.allow"
if ! (cd "$t" && sh "$checker" . >"$t/got2" 2>&1); then
  echo "fn_length_selftest: the checker failed with every offender allowed:"
  cat "$t/got2"
  status=1
fi
[ "$status" -eq 0 ] && echo "fn_length_selftest: ok (5 offenders and 1 stale entry found, 80-line functions passed)"
exit $status
