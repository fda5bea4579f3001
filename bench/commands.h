/* SPDX-License-Identifier: MIT */
/*
 * commands.h -- the subcommands of atomio-bench. Each takes argv with argv[0] the subcommand
 * name and returns the exit status: 0 ok, 1 runtime error, 2 usage error.
 */
#ifndef ATOMIO_BENCH_COMMANDS_H
#define ATOMIO_BENCH_COMMANDS_H

int cmd_probe(int argc, char **argv);   /* cmd_probe.c */
int cmd_run(int argc, char **argv);     /* cmd_run.c */
int cmd_compare(int argc, char **argv); /* cmd_run.c */
int cmd_inspect(int argc, char **argv); /* cmd_store.c */
int cmd_recover(int argc, char **argv); /* cmd_store.c */
int cmd_store(int argc, char **argv);   /* cmd_store.c: store reset */

#endif
