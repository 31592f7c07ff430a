/* errno.h — a plain global errno for the Aspen guest SDK. Guests have no threads and no thread
 * pointer (no TLS), so errno is an ordinary int, reset with the rest of memory before every job. */
#ifndef ASPEN_ERRNO_H
#define ASPEN_ERRNO_H

#include <aspen/libc_config.h>

extern int errno;

/* The Linux numbers, for familiarity; only these are ever set by the SDK. */
#define EPERM 1
#define ENOENT 2
#define EIO 5
#define E2BIG 7
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define ENOSPC 28
#define EDOM 33
#define ERANGE 34
#define ENOSYS 38
#define EOVERFLOW 75
#define EILSEQ 84

#endif
