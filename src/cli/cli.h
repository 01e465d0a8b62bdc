/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small command-line framework that behaves like cobra/pflag, which MarbleRun's CLI is built
 * with, so scripts see the same flags, help layout, error lines and exit codes:
 *
 *  - flags: `--name value`, `--name=value`, `-x value`, `-xvalue`, bool `--name`/`--name=false`,
 *    string slices split on commas and repeatable; flags may appear anywhere after the command
 *    name; `--` ends flag parsing;
 *  - persistent flags are inherited by all subcommands;
 *  - errors print `Error: <message>` on stderr; flag-parse and argument-count errors also print
 *    the command's usage (cobra's behaviour); the exit status is 1 on any error;
 *  - `-h/--help` and `help [command]` print the help text in cobra's layout.
 *
 * The same command table produces the man page and the bash completion script, so help,
 * man page and completion cannot drift apart.
 */
#ifndef MR_CLI_CLI_H
#define MR_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/result.h"

typedef enum mr_flag_type { MR_FLAG_BOOL = 0, MR_FLAG_STRING, MR_FLAG_STRINGS } mr_flag_type;

typedef struct mr_flag {
    const char *name;      /* long name without dashes; NULL terminates a table */
    char shorthand;        /* 0 = none */
    mr_flag_type type;
    const char *def;       /* default as pflag prints it: "", "false", "a,b" (slices) */
    const char *usage;
} mr_flag;

typedef struct mr_cli mr_cli;
typedef struct mr_cmd mr_cmd;

struct mr_cmd {
    const char *name;
    const char *args_use;   /* usage after the name, e.g. "<IP:PORT>"; NULL = none */
    const char *short_help;
    const char *long_help;  /* NULL = short_help */
    const char *example;    /* NULL = none */
    int min_args;
    int max_args;           /* -1 = any number */
    const mr_flag *flags;             /* local flags (NULL-name terminated) or NULL */
    const mr_flag *persistent_flags;  /* inherited by subcommands, or NULL */
    const mr_cmd *const *subs;        /* NULL-terminated list, or NULL */
    /* Runs the command. Print results to stdout; return a failure with the error slot set. */
    MR_RESULT (*run)(mr_cli *cli, int argc, char **argv);
};

/* Parses argv against the root command, runs the selected command and returns the process
 * exit status (0 or 1). */
int mr_cli_main(const mr_cmd *root, int argc, char **argv);

/* Flag values of the command being run (its local flags and all inherited persistent ones).
 * Unknown names are a programming error and abort. Returned pointers live as long as cli. */
const char *mr_cli_str(const mr_cli *cli, const char *name);
bool mr_cli_bool(const mr_cli *cli, const char *name);
/* Values of a string-slice flag; *count receives the number of entries. */
const char *const *mr_cli_strings(const mr_cli *cli, const char *name, size_t *count);
/* True when the user set the flag on the command line. */
bool mr_cli_changed(const mr_cli *cli, const char *name);
/* Help, man page and bash completion, all from the same table. */
void mr_cli_write_help(const mr_cmd *root, const mr_cmd *const *path, size_t depth, FILE *f);
void mr_cli_write_man(const mr_cmd *root, const char *version, FILE *f);
void mr_cli_write_bash_completion(const mr_cmd *root, FILE *f);

#endif
