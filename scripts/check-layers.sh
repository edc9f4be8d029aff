#!/bin/sh
# Fail if an #include in common/ crosses the module order of style.md B.2: a module may
# include only the modules listed for it (and itself). Internal headers (internal.h)
# may be included only from their own module. peft (the adapter math) sits below nn,
# which attaches adapters to its linear layers.
cd "$(dirname "$0")/.." || exit 1

allowed() {
    case "$1" in
    core) echo "core" ;;
    io) echo "core io" ;;
    tok) echo "core io tok" ;;
    dist) echo "core kern dist" ;; # dist/devcomm stages collectives of backend memory
    kern) echo "core kern" ;;
    peft) echo "core kern dist peft" ;;
    nn) echo "core kern dist peft nn" ;;
    data) echo "core io tok data" ;;
    ckpt) echo "core io dist peft nn ckpt" ;;
    train) echo "core io dist kern peft nn data ckpt train" ;;
    bridge) echo "core io dist peft nn ckpt bridge" ;;
    *) echo "" ;;
    esac
}

bad=0
for f in $(find common -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' | sort); do
    mod=$(echo "$f" | cut -d/ -f2)
    ok_list=$(allowed "$mod")
    for inc in $(sed -n 's/^#include "\([a-z_]*\)\/\([^"]*\)".*/\1\/\2/p' "$f"); do
        dep=${inc%%/*}
        case " $ok_list " in
        *" $dep "*) ;;
        *) echo "check-layers: $f: module '$mod' may not include '$inc'"; bad=1 ;;
        esac
        case "$inc" in
        */internal.h) [ "$dep" = "$mod" ] || { echo "check-layers: $f: '$inc' is internal to $dep"; bad=1; } ;;
        esac
    done
done
exit $bad
