#!/bin/sh
# install-deps.sh - install what mb needs to build and test, on Debian 12 (bookworm).
#
#   1. Debian packages (needs root; nothing is done when they are all installed).
#   2. The Python venv for the test oracles and benchmarks, in a cache folder outside
#      the checkout so every clone shares it: $MB_CACHE/venv
#      (MB_CACHE defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/mb). Python is used only
#      by tests and benchmarks, never by the tools.
#
# Idempotent. When everything is in place it only runs dpkg-query and compares a
# stamp file, so it is fast enough to run before every `make check`.
set -eu

APT_PACKAGES="
build-essential pkgconf
libopenmpi-dev openmpi-bin
libhdf5-openmpi-dev hdf5-tools
zlib1g-dev libopenblas-dev libpcre2-dev libutf8proc-dev libjansson-dev libyaml-dev
libdnnl-dev
man-db groff-base time strace
python3 python3-venv
fortunes fortunes-min fortunes-zh fortunes-ru
"
# libdnnl-dev: oneDNN, the bf16 matmul of mixed precision (kern/cpu).
# strace: tests/tools/t8207 delivers a signal as each open(2) of a tool returns.
# fortunes*: real English, Chinese and Russian text for the test corpora
# (scripts/fetch-test-data.sh).
# --fuzz: also clang and its libFuzzer/sanitizer runtimes, for make fuzz and check-long
if [ "${1:-}" = --fuzz ]; then
	APT_PACKAGES="$APT_PACKAGES clang libclang-rt-14-dev libomp-14-dev llvm-14"
fi

# The oracle venv. megatron-core 0.16.1 is the newest release with a cp311 wheel
# (Debian 12's python3 is 3.11); it needs torch to import.
PY_REQUIREMENTS="tokenizers==0.23.3
transformers==5.23.0
sentencepiece==0.2.3
protobuf==7.36.2
tiktoken==0.14.0
numpy==2.4.6
h5py==3.16.0
tensorboard==2.21.0
torch==2.15.0
megatron-core==0.16.1
peft==0.21.2
accelerate==1.16.0
gguf==0.19.0
Jinja2==3.1.6"

MB_CACHE="${MB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mb}"
VENV="$MB_CACHE/venv"
STAMP="$VENV/.mb-requirements"

die() {
	echo "install-deps: $*" >&2
	exit 1
}

# ---- Debian packages ------------------------------------------------------
if ! command -v dpkg-query >/dev/null 2>&1; then
	die "dpkg-query not found: this script supports Debian 12; install by hand:$(echo "$APT_PACKAGES" | tr "\n" " ")"
fi
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${db:Status-Abbrev}|${Package}\n' $APT_PACKAGES 2>/dev/null |
	sed -n 's/^ii *|//p')
missing=
for p in $APT_PACKAGES; do
	case "
$installed
" in
	*"
$p
"*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		die "missing Debian packages:$missing
run as root:  sudo $0   (or: apt-get install$missing)"
	fi
	echo "install-deps: installing Debian packages:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -o DPkg::Lock::Timeout=600 -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing
fi

# ---- Python venv for the oracles -------------------------------------------
venv_ok() {
	[ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] &&
		[ "$(cat "$STAMP")" = "$PY_REQUIREMENTS" ]
}

venv_ok && exit 0

mkdir -p "$MB_CACHE"
exec 9>"$MB_CACHE/install.lock"
flock 9                 # one install at a time per cache (clones share it)
venv_ok && exit 0

# Some other pip may still be installing into this venv (a torch install runs for
# minutes): wait for it rather than start a second one beside it.
waited=0
while pgrep -f "$VENV/bin/(pip[0-9.]*|python[0-9.]* -m pip)( |\$)" >/dev/null 2>&1; do
	[ $waited = 0 ] && echo "install-deps: waiting for a pip already running in $VENV" >&2
	waited=$((waited + 5))
	[ $waited -gt 3600 ] && die "a pip process in $VENV has been running for an hour"
	sleep 5
done

if [ ! -x "$VENV/bin/python" ]; then
	command -v python3 >/dev/null 2>&1 || die "python3 not found"
	v=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	[ "$v" = 3.11 ] || echo "install-deps: warning: python3 is $v; megatron-core==0.16.1 ships a cp311 wheel only" >&2
	echo "install-deps: creating $VENV" >&2
	python3 -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
fi

echo "install-deps: installing Python packages into $VENV (torch is large: this can take minutes)" >&2
reqs="$MB_CACHE/requirements.txt.$$"
printf '%s\n' "$PY_REQUIREMENTS" >"$reqs"
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$reqs"; then
	rm -f "$reqs"
	die "pip install into $VENV failed"
fi
rm -f "$reqs"
if ! out=$("$VENV/bin/python" -W ignore -c '
import tokenizers, transformers, sentencepiece, google.protobuf, tiktoken, numpy, h5py, torch, peft, gguf, jinja2
from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder
' 2>&1); then
	printf '%s\n' "$out" >&2
	die "the venv in $VENV does not import its packages (delete it and rerun)"
fi
printf '%s' "$PY_REQUIREMENTS" >"$STAMP"
echo "install-deps: done" >&2
