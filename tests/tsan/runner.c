/* SPDX-License-Identifier: MIT */
/*
 * runner.c (TSan stand-in for Criterion's runner, see criterion/criterion.h) -- runs every
 * registered test in a forked child: the suite's .init then the test's, the body, the test's
 * .fini then the suite's (Criterion's order: a test's own .fini adds to the suite's, it does not
 * replace it). A failed assertion runs the .fini functions and exits 1; a skip runs them and
 * exits 77 after printing its reason. Options (Criterion's --jobs=2 and the like) are ignored;
 * a plain argument runs only tests whose name contains it.
 */
#include "criterion/criterion.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define SKIP_CODE 77

static struct t_shim_test *tests;
static struct t_shim_suite *suites;
/* The running test's teardown, in order (test, then suite); NULL once it has run. */
static void (*current_fini[2])(void);

static void
run_fini(void)
{
    void (*fini[2])(void) = {current_fini[0], current_fini[1]};
    current_fini[0] = current_fini[1] = NULL; /* an assertion inside fini must not loop */
    for (int i = 0; i < 2; i++)
        if (fini[i])
            fini[i]();
}

void
t_shim_register(struct t_shim_test *t)
{
    t->next = tests;
    tests = t;
}

void
t_shim_register_suite(struct t_shim_suite *s)
{
    s->next = suites;
    suites = s;
}

void
t_shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[----] %s:%d: Assertion failed: %s\n[----]  ", file, line, expr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    run_fini();
    exit(1);
}

void
t_shim_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[----] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    run_fini();
    exit(SKIP_CODE);
}

void
t_shim_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[----] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int
run_one(const struct t_shim_test *t)
{
    const struct t_shim_suite *suite = NULL;
    for (const struct t_shim_suite *s = suites; s; s = s->next)
        if (!strcmp(s->name, t->suite))
            suite = s;
    void (*init[2])(void) = {suite ? suite->init : NULL, t->init};
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        current_fini[0] = t->fini;
        current_fini[1] = suite ? suite->fini : NULL;
        if (t->timeout > 0)
            alarm((unsigned)t->timeout + 1); /* as Criterion's .timeout: the test dies */
        for (int i = 0; i < 2; i++)
            if (init[i])
                init[i]();
        t->fn();
        run_fini();
        exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
main(int argc, char **argv)
{
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-')
            filter = argv[i];
    int passed = 0, failed = 0, skipped = 0;
    for (const struct t_shim_test *t = tests; t; t = t->next) {
        if (filter && !strstr(t->name, filter))
            continue;
        int rc = run_one(t);
        const char *tag = rc == 0 ? "PASS" : rc == SKIP_CODE ? "SKIP" : "FAIL";
        fprintf(stderr, "[%s] %s::%s\n", tag, t->suite, t->name);
        if (rc == 0)
            passed++;
        else if (rc == SKIP_CODE)
            skipped++;
        else
            failed++;
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Skipped: %d\n",
            passed + failed + skipped, passed, failed, skipped);
    return failed ? 1 : 0;
}
