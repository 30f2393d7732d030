#!/usr/bin/env sh
# Prints a Python 3.13 or 3.12 interpreter. Chalice takes the Lambda runtime from
# the Python that runs it, and Lambda has retired 3.11, so nothing older will do.
for candidate in python3.13 python3.12; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys' >/dev/null 2>&1; then
    command -v "$candidate"; exit 0
  fi
done
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for candidate in "$root"/versions/3.13*/bin/python3.13 "$root"/versions/3.12*/bin/python3.12; do
  if [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
done
echo "error: Python 3.13 or 3.12 is required (install one, e.g. 'pyenv install 3.13')" >&2
exit 1
