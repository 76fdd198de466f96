#!/usr/bin/env bash
# Print the path of a Python 3.12 or newer, or explain what to install.
set -euo pipefail
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
candidates=("${PYTHON:-}" python3.13 python3.12 python3 python)
for c in "${candidates[@]}"; do
  [ -n "$c" ] || continue
  if p=$(command -v "$c" 2>/dev/null) && ok "$p"; then echo "$p"; exit 0; fi
done
for p in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /opt/python*/bin/python3; do
  if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
done
echo "Postline needs Python 3.12 or newer. Install it (Debian/Ubuntu: apt-get install python3.12 python3.12-venv;" >&2
echo "pyenv: pyenv install 3.12) or set PYTHON=/path/to/python3.12." >&2
exit 1
