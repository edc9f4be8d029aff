#!/bin/sh
# tests/tools/t8402-ckpt-mutate.sh on seeds 251..1500 of each of its two checkpoints:
# with the quick suite's 1..250, 3,000 mutations in all, each against the five tools.
MB_MUT_FIRST=251 MB_MUT_LAST=1500
export MB_MUT_FIRST MB_MUT_LAST
exec sh "$(dirname "$0")/../tools/t8402-ckpt-mutate.sh"
