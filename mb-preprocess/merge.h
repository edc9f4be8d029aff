/* mb-preprocess/merge.h - join the ranks' part files into the final output pair.
 *
 * Each rank writes its share to "OUT.part-R-of-N" (a complete .bin/.idx pair); rank 0
 * then appends the parts in rank order into OUT (Megatron's add_index semantics) and
 * deletes them. Parts are registered as temporaries, so a failure removes them.
 */
#ifndef MB_PREPROCESS_MERGE_H
#define MB_PREPROCESS_MERGE_H

#include "core/dtype.h"

/* The part prefix of rank RANK of NRANKS for output prefix OUT (heap string). */
char *pp_part_prefix(const char *out, int rank, int nranks);

/* Register (or forget) both files of part PREFIX as temporaries. */
void pp_part_track(const char *prefix, int track);

/* Rank 0: merge the NRANKS parts of OUT into OUT.bin/.idx and delete them. */
int pp_merge_parts(const char *out, int nranks, enum mb_dtype dtype);

#endif /* MB_PREPROCESS_MERGE_H */
