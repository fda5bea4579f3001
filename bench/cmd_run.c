/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c -- `atomio-bench run FILE` and `atomio-bench compare FILE`, both a session
 * (session.c) of rows run --repeat times interleaved, then one report.
 *
 * run: one workload through one write path (AUTO unless --path says otherwise): a session of
 * one row with one repeat.
 * compare: the same workload through every path the file can do plus UNSAFE (and, with
 * --baselines, the bare loops), medians with min-max and ratios to UNSAFE and to the bare loops.
 */
#include "commands.h"
#include "session.h"

static int
run_session(int is_compare, int argc, char **argv)
{
    static struct session s;
    session_parse(&s, is_compare, argc, argv);
    int rc = session_setup(&s);
    if (rc)
        return rc;
    return session_finish(&s, session_execute(&s));
}

int
cmd_run(int argc, char **argv)
{
    return run_session(0, argc, argv);
}

int
cmd_compare(int argc, char **argv)
{
    return run_session(1, argc, argv);
}
