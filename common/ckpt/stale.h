/* ckpt/stale.h - removing the temporaries that a killed save left in a checkpoint
 * directory. */
#ifndef MB_CKPT_STALE_H
#define MB_CKPT_STALE_H

#include "core/defs.h"

/* Delete the regular files of DIR that carry the names of mb's own checkpoint
 * temporaries: iter_NNNNNNN.h5.tmp (save.c, before the rename) and latest.tmp.PID
 * (core/fs.h's outfile, before `latest` is replaced). Nothing else is touched. Logs
 * each removal. A DIR that does not exist holds none. Not for a directory that another
 * run is saving into. Returns the number removed, or -1 with mb_err naming the file. */
MB_MUST_CHECK int mb_ckpt_remove_stale(const char *dir);

#endif /* MB_CKPT_STALE_H */
