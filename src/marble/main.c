/* SPDX-License-Identifier: Apache-2.0 */
/*
 * marblerun-premain: attests to the Coordinator, receives the marble's parameters, applies
 * Files, Env and Argv, then execve()s the application (spec/marble-cli-k8s.md §1).
 *
 *   marblerun-premain [--] [program [args...]]
 *
 * The program to execute and its argv are chosen by mr_marble_plan_exec (marble_int.h): on a
 * plain process `program` when given, else the manifest's Argv[0] (PATH lookup when it has no
 * '/'), with the manifest's Argv or else `program args...`; under Gramine and Occlum as
 * MarbleRun's premain-libos does. Any failure exits with status 1 before anything is applied
 * or executed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "marble/marble_int.h"

#ifndef MR_VERSION
#define MR_VERSION "dev"
#endif

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f, "Usage: marblerun-premain [--] [program [args...]]\n\n"
               "Activates this process as a MarbleRun marble (EDG_MARBLE_TYPE, "
               "EDG_MARBLE_COORDINATOR_ADDR, EDG_MARBLE_DNS_NAMES, EDG_MARBLE_UUID_FILE), writes "
               "the manifest's Files, sets its Env and executes the program with the manifest's "
               "Argv (or the given arguments when the manifest has none). See docs/marble.md.\n");
}

static double now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The file to execute: `name` itself when it contains '/', else the first executable in PATH. */
static MR_RESULT resolve(const char *name, char *out, size_t out_size)
{
    MR_ENSURE(name[0] != '\0', MR_ERR_USAGE, "the program to execute has an empty name");
    if (strchr(name, '/') != NULL) {
        MR_ENSURE(access(name, X_OK) == 0, MR_ERR_USAGE, "cannot execute %s: %s", name,
                  strerror(errno));
        int n = snprintf(out, out_size, "%s", name);
        MR_ENSURE(n > 0 && (size_t)n < out_size, MR_ERR_USAGE, "program path too long");
        return MR_SUCCESS;
    }
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
        int n = snprintf(out, out_size, "%.*s%s%s", (int)len, p, len > 0 ? "/" : "", name);
        if (n > 0 && (size_t)n < out_size && access(out, X_OK) == 0)
            return MR_SUCCESS;
        if (colon == NULL)
            break;
        p = colon + 1;
    }
    MR_BAIL(MR_ERR_USAGE, "cannot execute %s: not found in PATH", name);
}

static int fail(const char *what)
{
    char line[MR_ERR_MSG_MAX + 128];
    (void)snprintf(line, sizeof(line), "%s: %s", what, mr_error_get()->msg);
    MR_LOG_ERROR(line);
    return 1;
}

int main(int argc, char **argv)
{
    double t0 = now_ms();
    int first = 1;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("marblerun-premain %s\n", MR_VERSION);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    char **cmd = argv + first;
    size_t n_cmd = (size_t)(argc - first);

    /* Console logs unless EDG_LOG_FORMAT=json (MarbleRun 1.7+). */
    const char *fmt = mr_config_get("EDG_LOG_FORMAT");
    mr_log_init(mr_config_bool("EDG_DEBUG_LOGGING") ? MR_LOG_DEBUG : MR_LOG_INFO,
                fmt != NULL && strcasecmp(fmt, "json") == 0 ? MR_LOG_JSON : MR_LOG_CONSOLE);
    mr_log_set_prefix("[PreMain] "); /* every line, as Go's log.SetPrefix (§1.4 step 1) */
    MR_LOG_INFO("starting PreMain");
    MR_LOG_INFO("fetching env variables");

    mr_marble_config cfg;
    if (!mr_ok(mr_marble_config_from_env(&cfg))) {
        MR_LOG_FATAL(mr_error_get()->msg);
        return 1;
    }
    mr_marble_params params;
    if (!mr_ok(mr_marble_activate(&cfg, &params)))
        return fail("activating marble failed");

    /* Decide what runs before anything is applied. */
    int rc = 1;
    char exe[PATH_MAX];
    mr_marble_exec_plan plan = {0};
    mr_marble_runtime rt = mr_marble_detect_runtime();
    char ttls_lib[PATH_MAX];
    if (!mr_ok(mr_marble_plan_exec(rt, argv[0], cmd, n_cmd, &params, &plan)) ||
        !mr_ok(resolve(plan.service, exe, sizeof(exe))) ||
        !mr_ok(mr_marble_ttls_plan(&params, ttls_lib, sizeof(ttls_lib)))) {
        rc = fail("activating marble failed");
        goto out;
    }
    if (plan.ignored > 0)
        MR_LOG_WARN("arguments given to the premain are not passed on: the application's argv "
                    "is the manifest's Argv (or [\"./marble\"])",
                    MR_F_UINT("ignored", plan.ignored),
                    MR_F_STR("runtime", mr_marble_runtime_name(rt)));
    if (!mr_ok(mr_marble_apply_files(&params, rt)) || !mr_ok(mr_marble_apply_env(&params)) ||
        !mr_ok(mr_marble_ttls_preload(ttls_lib))) {
        rc = fail("applying the marble parameters failed");
        goto out;
    }
    char line[PATH_MAX + 64];
    (void)snprintf(line, sizeof(line), "done with PreMain, executing %s", exe);
    mr_log_(MR_LOG_INFO, __FILE__, __LINE__, line, MR_F_FLOAT("elapsedMs", now_ms() - t0),
            MR_F_STR("runtime", mr_marble_runtime_name(rt)), MR_F_END);
    (void)fflush(NULL);
    execve(exe, plan.argv, environ);
    /* direct: main() returns an exit code, the macros return an mr_result */
    mr_error_set(MR_ERR_IO, __FILE__, __LINE__, "execve %s: %s", exe, strerror(errno));
    rc = fail("starting the application failed");
out:
    mr_marble_exec_plan_clear(&plan);
    mr_marble_params_clear(&params);
    return rc;
}
