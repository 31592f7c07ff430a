/* assert.h — assert() for the Aspen guest SDK: a failed assertion ends the job as a panic whose
 * message names the expression, file and line. NDEBUG turns assertions off as usual. */
#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#include <aspen/libc_config.h>
#ifdef __cplusplus
extern "C"
#endif
ASPEN_LIBC_NORETURN void aspen__assert_fail(const char *expr, const char *file, int line,
                                            const char *func);
#define assert(e) ((e) ? (void)0 : aspen__assert_fail(#e, __FILE__, __LINE__, __func__))
#endif
#ifndef __cplusplus
#ifndef static_assert
#define static_assert _Static_assert
#endif
#endif
