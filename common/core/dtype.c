/* core/dtype.c - dtype sizes and names. */
#include "core/dtype.h"

size_t mb_dtype_size(int code)
{
    switch (code) {
    case MB_DTYPE_U8:
    case MB_DTYPE_I8:
        return 1;
    case MB_DTYPE_I16:
    case MB_DTYPE_U16:
    case MB_DTYPE_BF16:
        return 2;
    case MB_DTYPE_I32:
    case MB_DTYPE_F32:
        return 4;
    case MB_DTYPE_I64:
    case MB_DTYPE_F64:
        return 8;
    default:
        return 0;
    }
}

const char *mb_dtype_name(int code)
{
    switch (code) {
    case MB_DTYPE_U8:
        return "uint8";
    case MB_DTYPE_I8:
        return "int8";
    case MB_DTYPE_I16:
        return "int16";
    case MB_DTYPE_I32:
        return "int32";
    case MB_DTYPE_I64:
        return "int64";
    case MB_DTYPE_F64:
        return "float64";
    case MB_DTYPE_F32:
        return "float32";
    case MB_DTYPE_U16:
        return "uint16";
    case MB_DTYPE_BF16:
        return "bfloat16";
    default:
        return "unknown";
    }
}

enum mb_dtype mb_dtype_for_vocab(int64_t vocab_size)
{
    return vocab_size < 65500 ? MB_DTYPE_U16 : MB_DTYPE_I32;
}
