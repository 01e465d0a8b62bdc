/* SPDX-License-Identifier: Apache-2.0 */
/* The premain's part of Transparent TLS (docs/ttls.md): it preloads libmarble-ttls.so into the
 * application when the activation answer carries MARBLE_TTLS_CONFIG. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "marble/marble_int.h"

#define TTLS_LIB "libmarble-ttls.so"

static bool ttls_off(void)
{
    const char *v = mr_config_get("EDG_MARBLE_TTLS");
    return v != NULL && (strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0 ||
                         strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0);
}

/* The directory of the running premain, with a trailing '/'. */
static MR_RESULT own_dir(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    MR_ENSURE(n > 0, MR_ERR_USAGE,
              "TTLS configured, but the premain cannot find its own directory (%s); set "
              "EDG_MARBLE_TTLS_LIB", strerror(errno));
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    MR_ENSURE(slash != NULL, MR_ERR_USAGE, "TTLS configured, but %s has no directory; set "
              "EDG_MARBLE_TTLS_LIB", self);
    slash[1] = '\0';
    int w = snprintf(out, size, "%s", self);
    MR_ENSURE(w > 0 && (size_t)w < size, MR_ERR_USAGE, "premain path too long");
    return MR_SUCCESS;
}

MR_RESULT mr_marble_ttls_plan(const mr_marble_params *p, char *lib, size_t size)
{
    lib[0] = '\0';
    bool configured = false;
    for (size_t i = 0; i < p->n_env; i++)
        if (strcmp(p->env[i].name, "MARBLE_TTLS_CONFIG") == 0)
            configured = p->env[i].value.len > 0;
    if (!configured)
        return MR_SUCCESS;
    if (ttls_off()) {
        MR_LOG_INFO("EDG_MARBLE_TTLS=off: MARBLE_TTLS_CONFIG is left to the application");
        return MR_SUCCESS;
    }
    char cand[PATH_MAX];
    const char *set = mr_config_get("EDG_MARBLE_TTLS_LIB");
    if (set != NULL) {
        int w = snprintf(cand, sizeof(cand), "%s", set);
        MR_ENSURE(w > 0 && (size_t)w < sizeof(cand), MR_ERR_USAGE, "EDG_MARBLE_TTLS_LIB too long");
        MR_ENSURE(access(cand, R_OK) == 0, MR_ERR_USAGE,
                  "TTLS configured, but EDG_MARBLE_TTLS_LIB %s cannot be read: %s", cand,
                  strerror(errno));
    } else {
        char dir[PATH_MAX];
        MR_GUARD(own_dir(dir, sizeof(dir)));
        int w = snprintf(cand, sizeof(cand), "%s%s", dir, TTLS_LIB);
        MR_ENSURE(w > 0 && (size_t)w < sizeof(cand), MR_ERR_USAGE, "premain path too long");
        if (access(cand, R_OK) != 0) {
            w = snprintf(cand, sizeof(cand), "%s../lib/%s", dir, TTLS_LIB);
            MR_ENSURE(w > 0 && (size_t)w < sizeof(cand), MR_ERR_USAGE, "premain path too long");
            MR_ENSURE(access(cand, R_OK) == 0, MR_ERR_USAGE,
                      "TTLS configured, but %s is neither in %s nor in %s../lib (set "
                      "EDG_MARBLE_TTLS_LIB, or EDG_MARBLE_TTLS=off when the application does "
                      "TLS itself)", TTLS_LIB, dir, dir);
        }
    }
    char abs[PATH_MAX];
    MR_ENSURE(realpath(cand, abs) != NULL, MR_ERR_USAGE, "TTLS library %s: %s", cand,
              strerror(errno));
    MR_ENSURE(strpbrk(abs, ": \t") == NULL, MR_ERR_USAGE,
              "TTLS library path %s contains a character LD_PRELOAD cannot carry", abs);
    int w = snprintf(lib, size, "%s", abs);
    MR_ENSURE(w > 0 && (size_t)w < size, MR_ERR_USAGE, "TTLS library path too long");
    return MR_SUCCESS;
}

MR_RESULT mr_marble_ttls_preload(const char *lib)
{
    if (lib == NULL || lib[0] == '\0')
        return MR_SUCCESS;
    const char *old = getenv("LD_PRELOAD");
    mr_buf v;
    mr_buf_init(&v, (size_t)64 * 1024, 0);
    bool keep = old != NULL && old[0] != '\0';
    mr_result r = keep && strstr(old, lib) != NULL ? mr_buf_append_str(&v, old)
                  : keep                           ? mr_buf_printf(&v, "%s:%s", old, lib)
                                                   : mr_buf_append_str(&v, lib);
    if (mr_ok(r))
        r = mr_buf_nul_terminate(&v);
    if (mr_ok(r) && setenv("LD_PRELOAD", (const char *)v.data, 1) != 0) {
        mr_error_set(MR_ERR_IO, __FILE__, __LINE__, "setenv LD_PRELOAD: %s", strerror(errno));
        r = MR_FAILURE;
    }
    mr_buf_free(&v);
    if (mr_ok(r)) {
        char line[PATH_MAX + 64];
        (void)snprintf(line, sizeof(line), "TTLS: preloading %s", lib);
        MR_LOG_INFO(line);
    }
    return r;
}
