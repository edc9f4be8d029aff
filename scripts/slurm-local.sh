#!/bin/sh
# slurm-local.sh - run a command against a single-node Slurm on this machine (as root).
#
#   scripts/slurm-local.sh install        install munge and Slurm from Debian if missing
#   scripts/slurm-local.sh run CMD...     install if missing, bring Slurm up, run CMD,
#                                         bring Slurm down again unless it was up before;
#                                         exits with CMD's status
#
# The bring-up itself is ../shared/tools/slurm-local-up.sh and slurm-local-down.sh
# (SLURM_LOCAL_TOOLS overrides the folder): munged, slurmctld and slurmd without systemd
# or cgroups, node "localhost", MpiDefault=pmix. `make check-slurm` uses `run`.
# Packages: munge slurmctld slurmd slurm-client (not the slurm-wlm metapackage, whose
# recommends pull in some thirty plugin packages); mpi_pmix comes with
# slurm-wlm-basic-plugins, a dependency of them.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${SLURM_LOCAL_TOOLS:-$ROOT/../shared/tools}
PACKAGES="munge slurmctld slurmd slurm-client"

die() {
	echo "slurm-local: error: $*" >&2
	exit 1
}

install_slurm() {
	missing=
	for p in $PACKAGES; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] ||
		die "missing Debian packages:$missing (run as root, or apt-get install --no-install-recommends$missing)"
	echo "slurm-local: installing Debian packages:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -o DPkg::Lock::Timeout=600 -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing >/dev/null
}

usage() {
	echo "usage: $0 install | run CMD..." >&2
	exit 2
}

slurm_answers() {
	command -v scontrol >/dev/null 2>&1 && [ -e /etc/slurm/slurm.conf ] &&
		timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
case "${1:-}" in
install)
	install_slurm ;;
run)
	shift
	[ $# -gt 0 ] || usage
	[ -x "$TOOLS/slurm-local-up.sh" ] ||
		die "$TOOLS/slurm-local-up.sh not found (set SLURM_LOCAL_TOOLS to the folder holding it)"
	install_slurm
	was_up=0
	slurm_answers && was_up=1
	"$TOOLS/slurm-local-up.sh" >"$tmp" 2>&1 || { cat "$tmp" >&2; die "slurm-local-up.sh failed"; }
	[ $was_up = 1 ] && echo "slurm-local: Slurm was already up: it stays up afterwards" >&2
	status=0
	# an interrupted CMD still brings Slurm down (the trap runs once CMD has ended)
	trap 'status=130' INT TERM
	"$@" || status=$?
	if [ $was_up = 0 ]; then
		"$TOOLS/slurm-local-down.sh" >"$tmp" 2>&1 ||
			{ cat "$tmp" >&2; echo "slurm-local: error: slurm-local-down.sh failed" >&2; status=1; }
	fi
	exit $status ;;
*)
	usage ;;
esac
