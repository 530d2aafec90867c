#!/bin/sh
# Project rules for C sources that the compiler does not enforce:
#  - no sprintf, strcpy or strtok (use snprintf, memcpy with lengths, explicit scanning);
#  - a file is one idea: no file over 1000 lines.
root=${1:-.}
status=0
files=$(find "$root/src" "$root/include" "$root/tools" "$root/tests/c" -name '*.[ch]' 2>/dev/null)
for f in $files; do
  if grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok)[[:space:]]*\(' "$f" | grep -vE 'snprintf|vsnprintf'; then
    echo "$f: uses a banned function (see above)"
    status=1
  fi
  n=$(wc -l < "$f")
  if [ "$n" -gt 1000 ]; then
    echo "$f: $n lines (the limit is 1000: split it by idea)"
    status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "c_rules: $(echo "$files" | wc -w) files checked, no banned functions, none over 1000 lines"
fi
exit $status
