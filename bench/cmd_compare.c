/* SPDX-License-Identifier: MIT */
/*
 * cmd_compare.c -- `atomio-bench compare FILE`: the same workload through every path the file
 * can do plus UNSAFE (and, with --baselines, the bare loops), --repeat times interleaved, medians
 * with min-max and ratios to UNSAFE and to the bare loops, in one invocation.
 */
#include "commands.h"
#include "session.h"

int
cmd_compare(int argc, char **argv)
{
    static struct session s;
    session_parse(&s, 1, argc, argv);
    int rc = session_setup(&s);
    if (rc)
        return rc;
    return session_finish(&s, session_execute(&s));
}
