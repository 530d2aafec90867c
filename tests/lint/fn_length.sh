#!/bin/sh
# No function over 80 lines (issue 14): a long function is split into named
# helpers with one job each, the way lua.c splits pmain.
#  - C (src/, tools/): a function runs from its '{' at column 0 to the next
#    '}' at column 0; its name is the identifier before '(' on the last
#    column-0 line above the '{'.
#  - Lua (lua/, examples/, scripts/*.lua): luac5.4 -p -l -l gives each
#    function's linedefined,lastlinedefined; its name is read from the
#    source line it starts on (function@LINE when it has none).
# Known offenders being fixed elsewhere are listed in the allow-list
# (default tests/lint/fn_length.allow), one path:function a line; an entry
# that no longer names an offender fails too, so the list only shrinks.
#
#   fn_length.sh [ROOT [ALLOW_FILE]]
root=${1:-.}
allow=tests/lint/fn_length.allow # under ROOT
if [ -n "$2" ]; then
  allow=$(cd "$(dirname "$2")" && pwd)/$(basename "$2") || exit 2
fi
limit=80
LUAC=${LUAC:-luac5.4}
cd "$root" || exit 2

c_spans() {
  awk -v limit="$limit" '
    FNR == 1 { hdr = ""; open = 0 }
    !open && /^[A-Za-z_].*\(/ { hdr = $0 }
    !open && /^[A-Za-z_].*;[[:space:]]*$/ { hdr = "" }
    !open && /^\{/ {
      open = FNR
      s = hdr
      sub(/\(.*/, "", s)
      name = match(s, /[A-Za-z_][A-Za-z0-9_]*$/) ? substr(s, RSTART, RLENGTH) : "block@" FNR
      next
    }
    open && /^\}/ {
      n = FNR - open + 1
      if (n > limit)
        printf "%s:%s %d %d\n", FILENAME, name, open, n
      open = 0
      hdr = ""
    }' "$@"
}

# One Lua file: "path:name line length" for each function over the limit.
lua_spans() {
  f=$1
  "$LUAC" -p -l -l "$f" >"$tmp/luac" 2>"$tmp/luac.err" || {
    echo "$f: luac5.4 cannot read it:" >&2
    cat "$tmp/luac.err" >&2
    return 1
  }
  grep '^function <' "$tmp/luac" | sed 's/^function <.*:\([0-9]*\),\([0-9]*\)>.*/\1 \2/' |
    awk -v limit="$limit" -v f="$f" '
      NR == FNR { a[FNR] = $1; b[FNR] = $2; n = FNR; next }
      { src[FNR] = $0 }
      END {
        for (i = 1; i <= n; i++) {
          len = b[i] - a[i] + 1
          if (len <= limit)
            continue
          s = src[a[i]]
          name = "function@" a[i]
          if (match(s, /function[[:space:]]+[A-Za-z_][A-Za-z0-9_.:]*/)) {
            name = substr(s, RSTART, RLENGTH)
            sub(/^function[[:space:]]+/, "", name)
          } else if (match(s, /[A-Za-z_][A-Za-z0-9_.]*[[:space:]]*=[[:space:]]*function/)) {
            name = substr(s, RSTART, RLENGTH)
            sub(/[[:space:]]*=.*/, "", name)
          }
          printf "%s:%s %d %d\n", f, name, a[i], len
        }
      }' - "$f"
}

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
status=0
: >"$tmp/found"
cfiles=$(find src tools -name '*.[ch]' 2>/dev/null | sort)
if [ -n "$cfiles" ]; then
  # shellcheck disable=SC2086
  c_spans $cfiles >>"$tmp/found"
fi
luafiles=$(
  find lua examples -name '*.lua' 2>/dev/null
  find scripts -maxdepth 1 -name '*.lua' 2>/dev/null
)
luafiles=$(echo "$luafiles" | sort)
nlua=0
for f in $luafiles; do
  lua_spans "$f" >>"$tmp/found" || status=1
  nlua=$((nlua + 1))
done

if [ -f "$allow" ]; then
  grep -v '^[[:space:]]*#' "$allow" | grep -v '^[[:space:]]*$' | sort -u >"$tmp/allow"
else
  : >"$tmp/allow"
fi
while read -r key line len; do
  if ! grep -qxF "$key" "$tmp/allow"; then
    echo "${key%%:*}:$line: ${key#*:} is $len lines (the limit is $limit: split it into named helpers)"
    status=1
  fi
done <"$tmp/found"
cut -d' ' -f1 "$tmp/found" | sort -u >"$tmp/offenders"
for key in $(comm -23 "$tmp/allow" "$tmp/offenders"); do
  echo "$key: listed in $allow but not over $limit lines: remove it from the list"
  status=1
done
if [ "$status" -eq 0 ]; then
  echo "fn_length: $(echo "$cfiles" | wc -w) C and $nlua Lua files checked," \
    "none over $limit lines but the $(wc -l <"$tmp/allow") allow-listed"
fi
exit $status
