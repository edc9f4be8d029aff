/* ckpt/h5util.c - HDF5 error capture, property lists, the bf16 type, dataset paths. */
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/internal.h"
#include "core/mem.h"

void ckpt_h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* The first entry of an upward walk is the innermost (most specific) error. A failed
 * system call's description is a paragraph ("file write failed: time = ..., errno = 28,
 * error message = 'No space left on device', ..."): its error message is enough. */
static herr_t take_innermost(unsigned n, const H5E_error2_t *e, void *out)
{
    const char *sys = e->desc ? strstr(e->desc, "error message = '") : NULL;

    if (n == 0 && sys) {
        sys += strlen("error message = '");
        snprintf(out, 256, "%.*s", (int)strcspn(sys, "'"), sys);
    } else if (n == 0 && e->desc) {
        snprintf(out, 256, "%.*s", (int)strcspn(e->desc, "\n"), e->desc);
    }
    return 0;
}

int ckpt_h5_err(enum mb_errc code, const char *where, const char *fmt, ...)
{
    char what[512], inner[256] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, inner);
    H5Eclear2(H5E_DEFAULT);
    if (inner[0])
        return mb_err_set(code, where, "%s (HDF5: %s)", what, inner);
    return mb_err_set(code, where, "%s", what);
}

hid_t ckpt_h5_fapl(const struct mb_dist *d)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);

    if (ckpt_mpi(d)) {
        H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
        H5Pset_coll_metadata_write(fapl, 1);
    }
    return fapl;
}

/* A 16-bit little-endian float made from float32: sign at bit 15, EBITS exponent bits
 * below it with bias EBIAS, the remaining 15 - EBITS bits of mantissa (implied one). */
static hid_t half_type(size_t ebits, size_t ebias)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    size_t mbits = 15 - ebits;

    H5Tset_fields(t, 15, mbits, ebits, 0, mbits);
    H5Tset_offset(t, 0);
    H5Tset_precision(t, 16);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, ebias);
    return t;
}

/* bf16: the top 16 bits of a float32 (exponent 8 bits, bias 127, as fp32) */
hid_t ckpt_h5_bf16_type(void)
{
    return half_type(8, 127);
}

/* IEEE binary16: exponent 5 bits, bias 15 */
hid_t ckpt_h5_f16_type(void)
{
    return half_type(5, 15);
}

/* A little-endian 2-byte float with these fields and bias. */
static int is_half(hid_t type, size_t want_epos, size_t want_esize, size_t want_msize,
                   size_t want_bias)
{
    size_t spos, epos, esize, mpos, msize;

    if (H5Tget_size(type) != 2 || H5Tget_order(type) != H5T_ORDER_LE)
        return 0;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0)
        return 0;
    return spos == 15 && epos == want_epos && esize == want_esize && mpos == 0 &&
           msize == want_msize && H5Tget_ebias(type) == want_bias && H5Tget_offset(type) == 0;
}

enum mb_ckpt_dtype ckpt_h5_classify(hid_t type)
{
    switch (H5Tget_class(type)) {
    case H5T_FLOAT:
        if (H5Tequal(type, H5T_IEEE_F32LE) > 0)
            return MB_CKPT_F32;
        if (is_half(type, 7, 8, 7, 127))
            return MB_CKPT_BF16;
        return is_half(type, 10, 5, 10, 15) ? MB_CKPT_F16 : MB_CKPT_OTHER;
    case H5T_INTEGER:
        if (H5Tequal(type, H5T_STD_I64LE) > 0)
            return MB_CKPT_I64;
        if (H5Tequal(type, H5T_STD_U8LE) > 0)
            return MB_CKPT_U8;
        return MB_CKPT_OTHER;
    default:
        return MB_CKPT_OTHER;
    }
}

hid_t ckpt_h5_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);

    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

const char *mb_ckpt_dtype_name(enum mb_ckpt_dtype t)
{
    static const char *names[] = { "fp32", "bf16", "int64", "uint8", "fp16", "other" };

    return (unsigned)t < MB_ARRAY_LEN(names) ? names[t] : "other";
}

size_t mb_ckpt_dtype_size(enum mb_ckpt_dtype t)
{
    static const size_t sizes[] = { 4, 2, 8, 1, 2, 0 };

    return (unsigned)t < MB_ARRAY_LEN(sizes) ? sizes[t] : 0;
}

void mb_ckpt_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

uint16_t mb_ckpt_bf16_from_f32(float x)
{
    uint32_t u;

    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
        return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep the sign, make it quiet */
    /* add 0x7fff plus the lowest kept bit: ties go to the even neighbour */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float mb_ckpt_f32_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;

    memcpy(&x, &u, sizeof x);
    return x;
}

/* Round the 24-bit significand M (value M * 2^-SHIFT in half subnormal units) to the
 * nearest integer, ties to even. */
static uint32_t round_shift(uint32_t m, int shift)
{
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);

    return r + (rem > half || (rem == half && (r & 1u)));
}

uint16_t mb_ckpt_f16_from_f32(float x)
{
    uint32_t u;

    memcpy(&u, &x, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: keep the top payload bits, make it quiet */
        return sign | 0x7e00u | (uint16_t)((a >> 13) & 0x3ffu);
    if (a >= 0x477ff000u) /* 65520 and up (and inf) round to inf */
        return sign | 0x7c00u;
    if (a >= 0x38800000u) { /* normal half: rebias 127 -> 15 and round 13 bits away */
        a += 0xfffu + ((a >> 13) & 1u);
        return sign | (uint16_t)((a - 0x38000000u) >> 13);
    }
    if (a < 0x33000000u) /* at most 2^-25: rounds to zero (the tie goes to even 0) */
        return sign;
    /* subnormal half: units of 2^-24; the value is m * 2^(e - 150) */
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    int e = (int)(a >> 23);
    return sign | (uint16_t)round_shift(m, 126 - e);
}

float mb_ckpt_f32_from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t u;
    float x;

    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in fp32 */
        x = (float)m * 0x1p-24f;
        return sign ? -x : x;
    }
    if (e == 31)
        u = sign | 0x7f800000u | (m << 13);
    else
        u = sign | ((e + 112u) << 23) | (m << 13);
    memcpy(&x, &u, sizeof x);
    return x;
}

static int name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

char *mb_ckpt_dataset_path(const char *group, const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0) {
        mb_err_set(MB_E_INVALID, "", "tensor name is empty");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int dot = name[i] == '.';
        if ((dot && (i == 0 || i == n - 1 || name[i - 1] == '.')) ||
            (!dot && !name_char_ok(name[i]))) {
            mb_err_set(MB_E_INVALID, "", "tensor name '%s' is not a dotted name", name);
            return NULL;
        }
    }
    char *path = mb_xmalloc(strlen(group) + n + 2);
    sprintf(path, "%s/%s", group, name);
    for (char *p = path + strlen(group) + 1; *p; p++)
        if (*p == '.')
            *p = '/';
    return path;
}

hid_t ckpt_h5_mem_type(enum mb_ckpt_dtype t)
{
    switch (t) {
    case MB_CKPT_F32: return H5T_NATIVE_FLOAT;
    case MB_CKPT_BF16: return ckpt_h5_bf16_type();
    case MB_CKPT_F16: return ckpt_h5_f16_type();
    case MB_CKPT_I64: return H5T_NATIVE_INT64;
    case MB_CKPT_U8: return H5T_NATIVE_UINT8;
    default: return -1;
    }
}

void ckpt_h5_type_close(enum mb_ckpt_dtype t, hid_t type)
{
    if (t == MB_CKPT_BF16 || t == MB_CKPT_F16)
        H5Tclose(type);
}

int ckpt_h5_write_attr(hid_t file, const char *tmp, const char *name, const char *value)
{
    const char *v = value ? value : "";
    size_t len = strlen(v);
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);

    H5Tset_size(type, len ? len : 1);
    H5Tset_strpad(type, H5T_STR_NULLPAD);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;

    if (a < 0 || H5Awrite(a, type, v) < 0)
        rc = ckpt_h5_err(MB_E_IO, tmp, "cannot write attribute '%s'", name);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
    return rc;
}
