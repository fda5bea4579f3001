/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c -- `atomio-bench run FILE`: one workload through one write path (AUTO unless
 * --path says otherwise). Options, file preparation and reporting are shared with compare
 * (session.c); a run is a comparison of one row with one repeat.
 */
#include "commands.h"
#include "session.h"

int
cmd_run(int argc, char **argv)
{
    static struct session s;
    session_parse(&s, 0, argc, argv);
    int rc = session_setup(&s);
    if (rc)
        return rc;
    return session_finish(&s, session_execute(&s));
}
