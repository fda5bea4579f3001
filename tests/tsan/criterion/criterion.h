/* SPDX-License-Identifier: MIT */
/*
 * criterion.h (TSan stand-in) -- Criterion 2.4 cannot start under ThreadSanitizer: its
 * inheritable arena looks for free address space where TSan keeps its shadow and gives up
 * ("Could not initialize inheritable arena",
 * https://github.com/Snaipe/Criterion/issues/274). Tsan builds therefore
 * compile the same test sources against this header and tests/tsan/runner.c, which provide the
 * subset of Criterion the suites use: Test()/TestSuite() with .init/.fini, the cr_assert_*
 * family, cr_skip_test() and cr_log_info(). Every test still runs in its own forked process.
 */
#ifndef ATOMIO_TSAN_CRITERION_H
#define ATOMIO_TSAN_CRITERION_H

/* What the real criterion.h brings in and the suites rely on. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t_shim_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    void (*init)(void);
    void (*fini)(void);
    double timeout; /* seconds, as Criterion's .timeout; 0: none */
    struct t_shim_test *next;
};

struct t_shim_suite {
    const char *name;
    void (*init)(void);
    void (*fini)(void);
    struct t_shim_suite *next;
};

void t_shim_register(struct t_shim_test *t);
void t_shim_register_suite(struct t_shim_suite *s);
void t_shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
void t_shim_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void t_shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite_, name_, ...)                                                               \
    static void suite_##_##name_(void);                                                        \
    __attribute__((constructor)) static void t_shim_reg_##suite_##_##name_(void)               \
    {                                                                                          \
        static struct t_shim_test t = {.suite = #suite_, .name = #name_,                       \
                                       .fn = suite_##_##name_, __VA_ARGS__};                   \
        t_shim_register(&t);                                                                   \
    }                                                                                          \
    static void suite_##_##name_(void)

#define TestSuite(suite_, ...)                                                                 \
    __attribute__((constructor)) static void t_shim_regsuite_##suite_(void)                    \
    {                                                                                          \
        static struct t_shim_suite s = {.name = #suite_, __VA_ARGS__};                         \
        t_shim_register_suite(&s);                                                             \
    }

/* " " keeps the format non-empty when a call gives no message. */
#define T_SHIM_CHECK(cond, expr, ...)                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            t_shim_fail(__FILE__, __LINE__, expr, " " __VA_ARGS__);                            \
    } while (0)

#define cr_assert(c, ...) T_SHIM_CHECK((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) T_SHIM_CHECK(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) T_SHIM_CHECK((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) T_SHIM_CHECK((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) T_SHIM_CHECK((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) T_SHIM_CHECK((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) T_SHIM_CHECK((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) T_SHIM_CHECK((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(a, ...) T_SHIM_CHECK((a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_assert_not_null(a, ...) T_SHIM_CHECK((a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) T_SHIM_CHECK(!strcmp((a), (b)), #a " eq " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) T_SHIM_CHECK(strcmp((a), (b)), #a " neq " #b, __VA_ARGS__)
#define cr_assert_str_empty(a, ...) T_SHIM_CHECK(!*(a), #a " empty", __VA_ARGS__)
#define cr_assert_fail(...) t_shim_fail(__FILE__, __LINE__, "failed", " " __VA_ARGS__)
#define cr_skip_test(...) t_shim_skip(__VA_ARGS__)
#define cr_log_info(...) t_shim_log(__VA_ARGS__)

#endif
