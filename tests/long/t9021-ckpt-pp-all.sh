#!/bin/sh
# tests/tools/t9020-ckpt-pp.sh with every layout loading the file of every layout (144
# loads per family of 12 layouts, 100 for Llama's 10).
MB_CKPT_PP_LOADS=all
export MB_CKPT_PP_LOADS
exec sh "$(dirname "$0")/../tools/t9020-ckpt-pp.sh"
