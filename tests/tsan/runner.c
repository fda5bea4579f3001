/* SPDX-License-Identifier: MIT */
/*
 * runner.c (TSan stand-in for Criterion's runner, see criterion/criterion.h) -- runs every
 * registered test in a forked child: suite or test .init, the body, .fini. A failed assertion
 * runs .fini and exits 1, a skip exits 77 after printing its reason. Options (Criterion's
 * --jobs=2 and the like) are ignored; a plain argument runs only tests whose name contains it.
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
static void (*current_fini)(void);

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
    void (*fini)(void) = current_fini;
    current_fini = NULL; /* an assertion inside fini must not loop */
    if (fini)
        fini();
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
    void (*init)(void) = t->init;
    void (*fini)(void) = t->fini;
    for (const struct t_shim_suite *s = suites; s; s = s->next) {
        if (!strcmp(s->name, t->suite)) {
            if (!init)
                init = s->init;
            if (!fini)
                fini = s->fini;
        }
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        current_fini = fini;
        if (t->timeout > 0)
            alarm((unsigned)t->timeout + 1); /* as Criterion's .timeout: the test dies */
        if (init)
            init();
        t->fn();
        current_fini = NULL;
        if (fini)
            fini();
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
