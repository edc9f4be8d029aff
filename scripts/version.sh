#!/bin/sh
# Print mb's version: git describe when in a checkout, else the VERSION file.
cd "$(dirname "$0")/.." || exit 1
v=$(git describe --tags --always --dirty 2>/dev/null) || v=
[ -n "$v" ] || v=$(cat VERSION 2>/dev/null) || v=
echo "${v:-unknown}"
