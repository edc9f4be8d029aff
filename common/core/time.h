/* core/time.h - monotonic clock. */
#ifndef MB_CORE_TIME_H
#define MB_CORE_TIME_H

/* Seconds from an arbitrary fixed point, monotonic. */
double mb_now(void);

#endif /* MB_CORE_TIME_H */
