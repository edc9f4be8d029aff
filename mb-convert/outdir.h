/* mb-convert/outdir.h - an output directory written under a temporary name beside it
 * and put in place whole (outdir.c). */
#ifndef MB_CONVERT_OUTDIR_H
#define MB_CONVERT_OUTDIR_H

#include <signal.h>
#include <stddef.h>

#include "core/defs.h"

struct cv_outdir {
    char *dst;    /* the directory asked for */
    char *tmp;    /* where the files go until commit */
    char *parent; /* DST's parent directory */
    int existed;  /* DST was there before (it is replaced on commit) */
    char **files; /* registered temporaries under TMP */
    int n;
    size_t cap;
};

/* Check DST (absent, empty, or an HF model directory, which is then replaced), remove
 * temporaries of this host's killed runs beside it, and create the temporary. -1 with
 * mb_err naming DST. */
MB_MUST_CHECK int cv_outdir_open(struct cv_outdir *od, const char *dst);
/* Register NAME, written into od->tmp, for removal on a fatal signal. */
void cv_outdir_add(struct cv_outdir *od, const char *name);
/* Put the temporary in DST's place; an old DST and all its files are gone after. On
 * failure the temporary is removed and DST is as it was. Releases OD either way. */
MB_MUST_CHECK int cv_outdir_commit(struct cv_outdir *od);
/* Remove the temporary and everything in it (mb_err is kept); releases OD. */
void cv_outdir_abort(struct cv_outdir *od);
void cv_outdir_release(struct cv_outdir *od);

/* Hold SIGINT, SIGTERM, SIGHUP and SIGQUIT (the old mask into *SAVED) over a step that
 * must not be cut in two, such as a rename and the file that names it; release delivers
 * any that came meanwhile. */
void cv_hold_signals(sigset_t *saved);
void cv_release_signals(const sigset_t *saved);

#endif /* MB_CONVERT_OUTDIR_H */
