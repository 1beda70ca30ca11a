#!/usr/bin/env bash
# Formats the C sources in place with clang-format and the committed
# .clang-format (scripts/test.sh checks the same files with --dry-run):
#   scripts/format.sh            every file
#   scripts/format.sh FILE...    those files
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  mapfile -t files < <(scripts/format.sh --list)
  set -- "${files[@]}"
elif [ "$1" = "--list" ]; then # the files the check covers
  if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard -- \
      'server/*.[ch]' 'asgi/*.[ch]' 'tests/c/*.[ch]' 'tests/fuzz/*.[ch]'
  else # a source tree without git
    find server asgi tests/c tests/fuzz -maxdepth 1 -name '*.[ch]' | sort
  fi
  exit 0
fi
clang-format -i --style=file "$@"
