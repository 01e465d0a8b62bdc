/* SPDX-License-Identifier: Apache-2.0 */
/* What the premain executes, per runtime (spec/marble-cli-k8s.md §1.4 step 10, §1.6, §1.7). */
#include <string.h>
#include <sys/utsname.h>

#include "common/alloc.h"
#include "marble/marble_int.h"

static char g_default_argv0[] = "./marble"; /* MarbleRun's argv when the manifest has none */

mr_marble_runtime mr_marble_runtime_from_uname(const char *sysname, const char *release,
                                               const char *version, const char *machine)
{
    /* Gramine reports fixed values; Occlum names itself */
    if (strcmp(sysname, "Linux") == 0 && strcmp(release, "3.10.0") == 0 &&
        strcmp(version, "1") == 0 && strcmp(machine, "x86_64") == 0)
        return MR_RT_GRAMINE;
    if (strcmp(sysname, "Occlum") == 0)
        return MR_RT_OCCLUM;
    return MR_RT_PLAIN;
}

mr_marble_runtime mr_marble_detect_runtime(void)
{
    struct utsname u;
    if (uname(&u) != 0)
        return MR_RT_PLAIN;
    return mr_marble_runtime_from_uname(u.sysname, u.release, u.version, u.machine);
}

const char *mr_marble_runtime_name(mr_marble_runtime rt)
{
    return rt == MR_RT_GRAMINE ? "gramine" : rt == MR_RT_OCCLUM ? "occlum" : "plain";
}

void mr_marble_exec_plan_clear(mr_marble_exec_plan *plan)
{
    mr_free(plan->argv);
    plan->argv = NULL;
    plan->argc = 0;
    plan->ignored = 0;
    plan->service = NULL;
}

MR_RESULT mr_marble_plan_exec(mr_marble_runtime rt, char *argv0, char **cmd, size_t n_cmd,
                              const mr_marble_params *p, mr_marble_exec_plan *out)
{
    char *one[1] = {g_default_argv0};
    char **src = NULL;
    size_t n = 0;
    memset(out, 0, sizeof(*out));
    if (p->argc > 0) {
        src = p->argv;
        n = p->argc;
    } else if (rt == MR_RT_PLAIN) {
        /* a plain process has no host/enclave boundary: its command line is the operator's
         * (docs/marble.md); with neither it, nor a manifest Argv, nothing can run */
        src = cmd;
        n = n_cmd;
    } else {
        /* Gramine and Occlum (§1.4 step 10, §1.6, §1.7): the manifest's Argv or ["./marble"],
         * never the arguments the premain was started with (the host may choose them) */
        src = one;
        n = 1;
    }
    switch (rt) {
    case MR_RT_PLAIN:
        out->service = n_cmd > 0 ? cmd[0] : (p->argc > 0 ? p->argv[0] : NULL);
        MR_ENSURE(out->service != NULL, MR_ERR_USAGE,
                  "nothing to execute: the manifest has no Argv and no program was given "
                  "after --");
        break;
    case MR_RT_GRAMINE:
        /* premain-libos executes its own argv[0] (Gramine's loader.argv[0]); a program
         * after "--" in loader.argv takes its place. Further arguments are not used. */
        out->service = n_cmd > 0 ? cmd[0] : argv0;
        out->ignored = n_cmd > 1 ? n_cmd - 1 : 0;
        break;
    case MR_RT_OCCLUM:
        /* the manifest's Argv[0] is the absolute in-image path; the app sees its basename */
        out->service = src[0];
        out->ignored = n_cmd;
        MR_ENSURE(out->service[0] == '/', MR_ERR_USAGE,
                  "invalid entrypoint definition in argv[0]: %s is not an absolute path",
                  out->service);
        break;
    }
    MR_ENSURE(out->service != NULL && out->service[0] != '\0', MR_ERR_USAGE,
              "the program to execute has an empty name");
    out->argv = mr_calloc(n + 1, sizeof(char *));
    MR_ENSURE_ALLOC(out->argv);
    for (size_t i = 0; i < n; i++)
        out->argv[i] = src[i];
    out->argc = n;
    if (rt == MR_RT_OCCLUM) {
        char *slash = strrchr(out->argv[0], '/');
        if (slash != NULL && slash[1] != '\0')
            out->argv[0] = slash + 1;
    }
    return MR_SUCCESS;
}
