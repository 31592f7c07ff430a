/* math.h — the few floating-point helpers the Aspen guest SDK provides (src/math.c).
 * Not a full libm: rounding functions, fabs, fmod, sqrt (one SSE2 instruction), ldexp/frexp and
 * the classification macros. Guests that need exp/log/pow should bring their own. */
#ifndef ASPEN_MATH_H
#define ASPEN_MATH_H

#include <aspen/libc_config.h>

#define HUGE_VAL (__builtin_huge_val())
#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
#define M_PI 3.14159265358979323846
#define M_E 2.7182818284590452354

#define isnan(x) __builtin_isnan(x)
#define isinf(x) __builtin_isinf(x)
#define isfinite(x) __builtin_isfinite(x)
#define signbit(x) __builtin_signbit(x)

double floor(double x);
double ceil(double x);
double trunc(double x);
double round(double x); /* halfway cases away from zero */
double fabs(double x);
double fmod(double x, double y);
double sqrt(double x);
double ldexp(double x, int exp);
double frexp(double x, int *exp);

#endif
