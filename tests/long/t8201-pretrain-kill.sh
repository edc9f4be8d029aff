#!/bin/sh
# tests/tools/t8206-pretrain-kill-quick.sh with 100 random SIGKILLs and 20 SIGTERMs: latest
# always names a complete checkpoint, each SIGTERM saves the signalled step and exits 0,
# each restart removes exactly the temporaries the previous kill left.
MB_KILLS=100 MB_TERMS=20
export MB_KILLS MB_TERMS
exec sh "$(dirname "$0")/../tools/t8206-pretrain-kill-quick.sh"
