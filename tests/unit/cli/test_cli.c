/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"

/* What the last run saw. */
static struct {
    int runs;
    int argc;
    char args[4][64];
    char era[128];
    bool insecure;
    size_t nstatus;
    char status[4][64];
    bool cert_changed;
    char out[64];
} seen;

static mr_result run_record(mr_cli *cli, int argc, char **argv)
{
    seen.runs++;
    seen.argc = argc;
    for (int i = 0; i < argc && i < 4; i++)
        (void)snprintf(seen.args[i], sizeof(seen.args[i]), "%s", argv[i]);
    (void)snprintf(seen.era, sizeof(seen.era), "%s", mr_cli_str(cli, "era-config"));
    seen.insecure = mr_cli_bool(cli, "insecure");
    const char *const *st = mr_cli_strings(cli, "accepted-tcb-statuses", &seen.nstatus);
    for (size_t i = 0; i < seen.nstatus && i < 4; i++)
        (void)snprintf(seen.status[i], sizeof(seen.status[i]), "%s", st[i]);
    return MR_SUCCESS;
}

static mr_result run_set(mr_cli *cli, int argc, char **argv)
{
    MR_GUARD(run_record(cli, argc, argv));
    seen.cert_changed = mr_cli_changed(cli, "cert");
    (void)snprintf(seen.out, sizeof(seen.out), "%s", mr_cli_str(cli, "output"));
    return MR_SUCCESS;
}

static mr_result run_fail(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    MR_BAIL(MR_ERR_AUTH, "unauthorized user");
}

static const mr_flag globals[] = {
    {"era-config", 0, MR_FLAG_STRING, "", "Path to a remote-attestation config file"},
    {"insecure", 'i', MR_FLAG_BOOL, "false", "Skip quote verification"},
    {"accepted-tcb-statuses", 0, MR_FLAG_STRINGS, "UpToDate,SWHardeningNeeded", "Statuses"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag set_flags[] = {
    {"cert", 'c', MR_FLAG_STRING, "", "PEM encoded MarbleRun user certificate file"},
    {"output", 'o', MR_FLAG_STRING, "text", "Output format"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_cmd set_cmd = {
    .name = "set", .args_use = "<manifest.json> <IP:PORT>", .short_help = "Sets the manifest",
    .min_args = 2, .max_args = 2, .flags = set_flags, .run = run_set,
};
static const mr_cmd fail_cmd = {
    .name = "fail", .short_help = "Always fails", .run = run_fail,
};
static const mr_cmd *const manifest_subs[] = {&set_cmd, &fail_cmd, NULL};
static const mr_cmd manifest_cmd = {
    .name = "manifest", .short_help = "Manages manifest", .subs = manifest_subs,
};
static const mr_cmd status_cmd = {
    .name = "status", .args_use = "<IP:PORT>", .short_help = "Status", .min_args = 1,
    .max_args = 1, .run = run_record,
};
static const mr_cmd *const root_subs[] = {&manifest_cmd, &status_cmd, NULL};
static const mr_cmd root = {
    .name = "marblerun", .short_help = "Install and manage MarbleRun",
    .persistent_flags = globals, .subs = root_subs,
};

/* Runs the CLI with stdout and stderr captured into the given buffers. */
static int run(char *out, size_t outsz, char *err, size_t errsz, int argc, char **argv)
{
    memset(&seen, 0, sizeof(seen));
    FILE *fo = tmpfile(), *fe = tmpfile();
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = mr_cli_main(&root, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    rewind(fo);
    rewind(fe);
    size_t n = fread(out, 1, outsz - 1, fo);
    out[n] = '\0';
    n = fread(err, 1, errsz - 1, fe);
    err[n] = '\0';
    fclose(fo);
    fclose(fe);
    return rc;
}

#define RUN(...)                                                                              \
    ({                                                                                        \
        char *argv_[] = {"marblerun", __VA_ARGS__};                                      \
        run(out, sizeof(out), err, sizeof(err), (int)MR_ARRAY_LEN(argv_), argv_);             \
    })

static void test_flags_anywhere(void **state)
{
    (void)state;
    char out[8192], err[4096];
    assert_int_equal(RUN("manifest", "--era-config", "era.json", "set", "m.json", "-i", "host:4433",
                         "-c=user.pem", "--accepted-tcb-statuses", "OutOfDate",
                         "--accepted-tcb-statuses=Revoked,SWHardeningNeeded"),
                     0);
    assert_int_equal(seen.runs, 1);
    assert_int_equal(seen.argc, 2);
    assert_string_equal(seen.args[0], "m.json");
    assert_string_equal(seen.args[1], "host:4433");
    assert_string_equal(seen.era, "era.json");
    assert_true(seen.insecure);
    assert_true(seen.cert_changed);
    assert_string_equal(seen.out, "text"); /* default */
    assert_int_equal(seen.nstatus, 3);     /* explicit values replace the default */
    assert_string_equal(seen.status[0], "OutOfDate");
    assert_string_equal(seen.status[2], "SWHardeningNeeded");
}

static void test_defaults_and_shorthand(void **state)
{
    (void)state;
    char out[8192], err[4096];
    assert_int_equal(RUN("manifest", "set", "a", "b", "-ojson", "--insecure=false"), 0);
    assert_false(seen.insecure);
    assert_false(seen.cert_changed);
    assert_string_equal(seen.out, "json");
    assert_int_equal(seen.nstatus, 2);
    assert_string_equal(seen.status[0], "UpToDate");
    /* `--` ends flag parsing */
    assert_int_equal(RUN("status", "--", "-i"), 0);
    assert_false(seen.insecure);
    assert_string_equal(seen.args[0], "-i");
}

static void test_usage_errors(void **state)
{
    (void)state;
    char out[8192], err[4096];
    assert_int_equal(RUN("manifest", "set", "only-one"), 1);
    assert_int_equal(seen.runs, 0);
    assert_non_null(strstr(err, "Error: accepts 2 arg(s), received 1\n"));
    assert_non_null(strstr(out, "Usage:\n  marblerun manifest set <manifest.json> <IP:PORT> [flags]\n"));
    assert_int_equal(RUN("status", "x", "--bogus"), 1);
    assert_non_null(strstr(err, "Error: unknown flag: --bogus"));
    assert_int_equal(RUN("status", "x", "-z"), 1);
    assert_non_null(strstr(err, "Error: unknown shorthand flag: 'z' in -z"));
    assert_int_equal(RUN("status", "x", "--era-config"), 1);
    assert_non_null(strstr(err, "Error: flag needs an argument: --era-config"));
    assert_int_equal(RUN("status", "x", "--insecure=maybe"), 1);
    assert_non_null(strstr(err, "invalid argument \"maybe\" for \"--insecure\" flag"));
    assert_int_equal(RUN("bogus"), 1);
    assert_non_null(strstr(err, "Error: unknown command \"bogus\" for \"marblerun\""));
}

static void test_command_error(void **state)
{
    (void)state;
    char out[8192], err[4096];
    assert_int_equal(RUN("manifest", "fail"), 1);
    assert_string_equal(err, "Error: unauthorized user\n");
    assert_null(strstr(out, "Usage:")); /* errors inside commands print no usage */
}

static void test_help(void **state)
{
    (void)state;
    char out[8192], err[4096];
    assert_int_equal(RUN("--help"), 0);
    assert_non_null(strstr(out, "Install and manage MarbleRun\n\nUsage:\n  marblerun [command]\n"));
    assert_non_null(strstr(out, "Available Commands:\n  manifest    Manages manifest\n"
                                "  status      Status\n  help        Help about any command\n"));
    assert_non_null(strstr(out, "      --accepted-tcb-statuses strings   Statuses (default [UpToDate,SWHardeningNeeded])\n"));
    assert_non_null(strstr(out, "  -i, --insecure                        Skip quote verification\n"));
    assert_non_null(strstr(out, "Use \"marblerun [command] --help\" for more information about a command.\n"));
    assert_int_equal(RUN("manifest", "set", "-h"), 0);
    assert_int_equal(seen.runs, 0);
    assert_non_null(strstr(out, "Flags:\n  -c, --cert string     PEM encoded MarbleRun user certificate file\n"));
    assert_non_null(strstr(out, "  -o, --output string   Output format (default \"text\")\n"));
    assert_non_null(strstr(out, "Global Flags:\n"));
    assert_int_equal(RUN("help", "manifest"), 0);
    assert_non_null(strstr(out, "Usage:\n  marblerun manifest [command]\n"));
    assert_int_equal(RUN("manifest"), 0); /* a group without run prints its help */
    assert_non_null(strstr(out, "  set         Sets the manifest\n"));
}

static void test_man_and_completion(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mr_cli_write_man(&root, "1.2.3", f);
    fclose(f);
    assert_non_null(strstr(buf, ".TH marblerun 1"));
    assert_non_null(strstr(buf, ".SS \"marblerun manifest set <manifest.json> <IP:PORT>\""));
    assert_non_null(strstr(buf, "\\-\\-era\\-config"));
    free(buf); /* check-source: allow alloc -- open_memstream's buffer comes from malloc */
    buf = NULL;
    f = open_memstream(&buf, &len);
    mr_cli_write_bash_completion(&root, f);
    fclose(f);
    assert_non_null(strstr(buf, "complete -F _marblerun_complete marblerun"));
    assert_non_null(strstr(buf, "\"manifest\") words=\" set fail --help --era-config"));
    free(buf); /* check-source: allow alloc -- open_memstream's buffer comes from malloc */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_anywhere),
        cmocka_unit_test(test_defaults_and_shorthand),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_command_error),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_man_and_completion),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
