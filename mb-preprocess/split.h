/* mb-preprocess/split.h - this rank's share of the input, as byte ranges.
 *
 * The inputs are seen as one stream (their decompressed contents one after another)
 * of S bytes; rank r of n owns the lines that START in [r*S/n, (r+1)*S/n). Every line
 * belongs to exactly one rank, and concatenating the ranks' outputs in rank order
 * gives the single-process output byte for byte.
 */
#ifndef MB_PREPROCESS_SPLIT_H
#define MB_PREPROCESS_SPLIT_H

#include "pipeline.h"

/* Fill *SEGS (heap array) with this rank's segments of PATHS. Returns the count, or
 * -1 with mb_err set (an unreadable or corrupt input). */
int pp_split(char *const *paths, int npaths, int rank, int nranks, struct pp_segment **segs);

#endif /* MB_PREPROCESS_SPLIT_H */
