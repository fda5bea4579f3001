/* SPDX-License-Identifier: MIT */
/*
 * atomio-bench.c -- main and the command table. A subcommand is one entry here plus a
 * `int cmd_x(int argc, char **argv)` (argv[0] is the subcommand name) that returns the exit
 * status: 0 ok, 1 runtime error, 2 usage error. Uses only the public atomio.h.
 */
#include "args.h"
#include "commands.h"

#include <atomio.h>

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"probe", cmd_probe, "show a file's atomic-write capabilities and AUTO's choice, with reasons"},
    {"run", cmd_run, "run one workload through one write path"},
    {"compare", cmd_compare, "run the same workload through every path, side by side"},
    {"inspect", cmd_inspect, "dump a doublewrite store directory"},
    {"recover", cmd_recover, "run recovery on a doublewrite store directory"},
    {"store", cmd_store, "store reset DIR: discard every copy a doublewrite store holds"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
help(FILE *out)
{
    fprintf(out, "usage: atomio-bench COMMAND [ARGS] [--help]\n"
                 "       atomio-bench --version\n\n"
                 "Measure what untorn page writes cost with libatomio, path by path.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nexamples:\n"
                 "  atomio-bench probe /data/ibdata1 --page-size 16k\n"
                 "  atomio-bench compare /data/bench.dat --page-size 16k --batch 64 --qd 32\n"
                 "  atomio-bench run /data/bench.dat --path doublewrite --duration 10s --json\n\n"
                 "exit status: 0 ok, 1 runtime error, 2 usage error. See atomio-bench(1).\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "atomio-bench: missing command (try 'atomio-bench --help')\n");
        return BENCH_EXIT_USAGE;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        help(stdout);
        return BENCH_EXIT_OK;
    }
    if (strcmp(c, "--version") == 0 || strcmp(c, "-V") == 0) {
        printf("atomio-bench %s (libatomio %s)\n", ATOMIO_VERSION_STRING, atomio_version_string());
        return BENCH_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(c, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "atomio-bench: unknown command '%s' (try 'atomio-bench --help')\n", c);
    return BENCH_EXIT_USAGE;
}
