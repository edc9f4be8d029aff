/* core/dtype.h - element types, with Megatron's indexed-dataset codes.
 *
 * The enum values ARE the codes Megatron writes in an .idx header (formats.md 1.3), so
 * they must never be renumbered. Later types (bf16 ...) start at 32.
 */
#ifndef MB_CORE_DTYPE_H
#define MB_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum mb_dtype {
    MB_DTYPE_U8 = 1,
    MB_DTYPE_I8 = 2,
    MB_DTYPE_I16 = 3,
    MB_DTYPE_I32 = 4,
    MB_DTYPE_I64 = 5,
    MB_DTYPE_F64 = 6,
    MB_DTYPE_F32 = 7,
    MB_DTYPE_U16 = 8,
    MB_DTYPE_BF16 = 32, /* not a Megatron code: tensors in memory (kern/ops.h) */
};

/* Size in bytes, or 0 for an unknown code. */
size_t mb_dtype_size(int code);
/* "uint16", "int32", ...; "unknown" for an unknown code. */
const char *mb_dtype_name(int code);

/* A code Megatron writes in an .idx header (1 .. 8). */
static inline int mb_dtype_is_megatron(int code)
{
    return code >= MB_DTYPE_U8 && code <= MB_DTYPE_U16;
}

/* The token dtype Megatron picks for a vocabulary (DType.optimal_dtype):
 * uint16 below 65500 entries, else int32. */
enum mb_dtype mb_dtype_for_vocab(int64_t vocab_size);

#endif /* MB_CORE_DTYPE_H */
