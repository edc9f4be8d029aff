/* core/defs.h - attribute and arithmetic macros shared by every module; no code.
 *
 * MB_MUST_CHECK marks functions whose return value reports failure, MB_PRINTF
 * printf-like functions, MB_NORETURN functions that never return.
 */
#ifndef MB_CORE_DEFS_H
#define MB_CORE_DEFS_H

#define MB_MUST_CHECK       __attribute__((warn_unused_result))
#define MB_PRINTF(fmt, arg) __attribute__((format(printf, fmt, arg)))
#define MB_NORETURN         __attribute__((noreturn))
#define MB_UNUSED           __attribute__((unused))

#define MB_ARRAY_LEN(a)     (sizeof(a) / sizeof((a)[0]))
#define MB_CEIL_DIV(a, b)   (((a) + (b) - 1) / (b))
#define MB_MIN(a, b)        ((a) < (b) ? (a) : (b))
#define MB_MAX(a, b)        ((a) > (b) ? (a) : (b))

#endif /* MB_CORE_DEFS_H */
