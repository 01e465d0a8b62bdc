/* SPDX-License-Identifier: Apache-2.0 */
/* The update log (spec §8.4): one JSON line per event, appended to `updateLog`. */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "coordinator/core/core_int.h"

mr_result core_log_time(mr_buf *out)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    MR_ENSURE(gmtime_r(&ts.tv_sec, &tm) != NULL, MR_ERR_INTERNAL, "clock");
    MR_ENSURE(strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm) > 0, MR_ERR_INTERNAL, "clock");
    return mr_buf_printf(out, "%s.%03ldZ", when, ts.tv_nsec / 1000000);
}

mr_result core_log_line(mr_buf *log, const char *update, ...)
{
    size_t start = log->len;
    mr_buf when;
    mr_buf_init(&when, 64, 0);
    mr_result r = core_log_time(&when);
    if (mr_ok(r))
        r = mr_buf_append_str(log, "{\"time\":");
    if (mr_ok(r))
        r = mr_manifest_json_string((const char *)when.data, when.len, log);
    if (mr_ok(r))
        r = mr_buf_append_str(log, ",\"update\":");
    if (mr_ok(r))
        r = mr_manifest_json_string(update, strlen(update), log);
    va_list ap;
    va_start(ap, update);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL || !mr_ok(r))
            break;
        const char *json_value = va_arg(ap, const char *);
        r = mr_buf_append_u8(log, ',');
        if (mr_ok(r))
            r = mr_manifest_json_string(key, strlen(key), log);
        if (mr_ok(r))
            r = mr_buf_append_u8(log, ':');
        if (mr_ok(r))
            r = mr_buf_append_str(log, json_value);
    }
    va_end(ap);
    if (mr_ok(r))
        r = mr_buf_append_str(log, "}\n");
    mr_buf_free(&when);
    if (!mr_ok(r))
        log->len = start;
    return r;
}

mr_result core_json_str(const char *s, mr_buf *out)
{
    mr_buf_reset(out);
    MR_GUARD(mr_manifest_json_string(s, strlen(s), out));
    return mr_buf_nul_terminate(out);
}
