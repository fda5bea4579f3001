/* SPDX-License-Identifier: MIT */
/*
 * test_attach.c -- the processes of one instance in its shared table: how many attach at once,
 * what one more gets, and that each process has one entry whatever its number of contexts.
 * Every process is a fork()ed child that opens its own ctx with the instance's name and then
 * waits for a byte on its gate pipe: '2' opens a second ctx, end of file closes everything.
 */
#include "atomio_internal.h"
#include "store/store.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256], dwdir[320];

#define MANY 300 /* more than the 256 an instance took before */

/* The parent's ends of every live child's pipes: a child closes its copies of them, or an
 * earlier child would never see end of file on its gate. */
static int held[2 * (MANY + 1)];
static int nheld;

static void
setup(void)
{
    nheld = 0;
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
}

static void
teardown(void)
{
    atomic_store(&atomio__test_procs, 0);
    t_rmtree(tmp);
}

TestSuite(attach, .init = setup, .fini = teardown);

static atomio_ctx_opts
opts(void)
{
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.instance = "inst";
    co.doublewrite_mode = ATOMIO_DOUBLEWRITE_DEFERRED;
    return co;
}

struct report {
    int rc;
    char reason[240];
};

struct kid {
    pid_t pid;
    int res; /* read end: the child's reports */
    int gate; /* write end: commands to the child */
};

static void
report(int fd, int rc)
{
    struct report r = {.rc = rc};
    const char *why = atomio_last_reason();
    snprintf(r.reason, sizeof(r.reason), "%s", rc < 0 && why ? why : "");
    if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(3);
}

static void
hold(int fd)
{
    held[nheld++] = fd;
}

/* release() -- close a held descriptor and forget it. */
static void
release(int fd)
{
    for (int i = 0; i < nheld; i++)
        if (held[i] == fd) {
            held[i] = held[--nheld];
            break;
        }
    close(fd);
}

static void
kid_start(struct kid *k)
{
    int res[2], gate[2];
    cr_assert_eq(pipe(res), 0);
    cr_assert_eq(pipe(gate), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        for (int i = 0; i < nheld; i++)
            close(held[i]);
        close(res[0]);
        close(gate[1]);
        atomio_ctx_opts co = opts();
        atomio_ctx *ctx[2] = {NULL, NULL};
        report(res[1], atomio_ctx_open(&co, &ctx[0]));
        char c;
        while (read(gate[0], &c, 1) == 1)
            if (c == '2' && !ctx[1])
                report(res[1], atomio_ctx_open(&co, &ctx[1]));
        for (int i = 1; i >= 0; i--)
            if (ctx[i])
                (void)atomio_ctx_close(ctx[i]);
        _exit(0);
    }
    close(res[1]);
    close(gate[0]);
    hold(res[0]);
    hold(gate[1]);
    *k = (struct kid){.pid = pid, .res = res[0], .gate = gate[1]};
}

static struct report
kid_report(const struct kid *k)
{
    struct report r;
    cr_assert_eq(read(k->res, &r, sizeof(r)), (ssize_t)sizeof(r), "child %d reported", k->pid);
    return r;
}

static void
kid_send(const struct kid *k, char c)
{
    cr_assert_eq(write(k->gate, &c, 1), 1);
}

/* kid_end() -- close the child's contexts (kill: SIGKILL it instead) and reap it. */
static void
kid_end(struct kid *k, bool kill_it)
{
    if (kill_it)
        kill(k->pid, SIGKILL);
    release(k->gate);
    int st;
    cr_assert_eq(waitpid(k->pid, &st, 0), k->pid);
    if (!kill_it)
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d exit", k->pid);
    release(k->res);
}

static uint64_t
attached(atomio_ctx *ctx)
{
    atomio_stats st = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    return st.attached;
}

Test(attach, three_hundred_processes_share_one_instance, .timeout = 120)
{
    atomio_ctx_opts co = opts();
    atomio_ctx *ctx = t_ctx_open(&co);
    static struct kid k[MANY];
    for (int i = 0; i < MANY; i++) {
        kid_start(&k[i]);
        struct report r = kid_report(&k[i]);
        cr_assert_eq(r.rc, 0, "process %d of %d: %s: %s", i + 2, MANY + 1, atomio_err_name(r.rc),
                     r.reason);
    }
    cr_assert_eq(attached(ctx), MANY + 1);
    for (int i = 0; i < MANY; i++)
        kid_end(&k[i], false);
    cr_assert_eq(attached(ctx), 1, "each child left when it closed its ctx");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(attach, one_more_than_the_table_is_refused_until_one_leaves, .timeout = 60)
{
    atomic_store(&atomio__test_procs, 4);
    atomio_ctx_opts co = opts();
    atomio_ctx *ctx = t_ctx_open(&co);
    struct kid k[5];
    for (int i = 0; i < 3; i++) {
        kid_start(&k[i]);
        cr_assert_eq(kid_report(&k[i]).rc, 0);
    }
    kid_start(&k[3]);
    struct report r = kid_report(&k[3]);
    cr_assert_eq(r.rc, ATOMIO_E_BUSY, "a fifth process: %s", atomio_err_name(r.rc));
    cr_assert(strstr(r.reason, "4 processes") != NULL, "the refusal says why: '%s'", r.reason);
    kid_end(&k[3], false);
    cr_assert_eq(attached(ctx), 4);

    /* A process killed without closing leaves its entry to the next one. */
    kid_end(&k[0], true);
    kid_start(&k[4]);
    r = kid_report(&k[4]);
    cr_assert_eq(r.rc, 0, "after a process died: %s: %s", atomio_err_name(r.rc), r.reason);
    cr_assert_eq(attached(ctx), 4);
    for (int i = 1; i < 5; i++)
        if (i != 3)
            kid_end(&k[i], false);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(attach, a_second_ctx_of_a_process_shares_its_entry, .timeout = 60)
{
    /* The parent has entry 0, A entry 1, B entry 2. A leaves, so entry 1 is free when B
     * opens its second ctx: B must count once, not take entry 1 as well. */
    atomio_ctx_opts co = opts();
    atomio_ctx *ctx = t_ctx_open(&co);
    struct kid a, b;
    kid_start(&a);
    cr_assert_eq(kid_report(&a).rc, 0);
    kid_start(&b);
    cr_assert_eq(kid_report(&b).rc, 0);
    kid_end(&a, false);
    kid_send(&b, '2');
    cr_assert_eq(kid_report(&b).rc, 0);
    cr_assert_eq(attached(ctx), 2, "the parent and B, each once");
    kid_end(&b, false);
    cr_assert_eq(attached(ctx), 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
