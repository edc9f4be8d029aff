#!/bin/sh
# tests/tools/t8701-convert-interrupt.sh with 150 kills of --to hf and 60 of --to h5.
MB_KILLS_HF=${MB_KILLS_HF:-150} MB_KILLS_H5=${MB_KILLS_H5:-60}
export MB_KILLS_HF MB_KILLS_H5
exec sh "$(dirname "$0")/../tools/t8701-convert-interrupt.sh"
