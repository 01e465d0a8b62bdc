/* SPDX-License-Identifier: Apache-2.0 */
/* The update log (spec §8.4): one JSON line per event, appended to `updateLog`. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator/core/core_int.h"

MR_RESULT core_log_time(mr_buf *out)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    MR_ENSURE(gmtime_r(&ts.tv_sec, &tm) != NULL, MR_ERR_INTERNAL, "clock");
    MR_ENSURE(strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm) > 0, MR_ERR_INTERNAL, "clock");
    return mr_buf_printf(out, "%s.%03ldZ", when, ts.tv_nsec / 1000000);
}

/* ,"<key>":<json value> for each pair of the NULL-terminated list. */
static MR_RESULT log_fields(mr_buf *log, va_list ap)
{
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            return MR_SUCCESS;
        const char *json_value = va_arg(ap, const char *);
        MR_GUARD(mr_buf_append_u8(log, ','));
        MR_GUARD(mr_manifest_json_string(key, strlen(key), log));
        MR_GUARD(mr_buf_append_u8(log, ':'));
        MR_GUARD(mr_buf_append_str(log, json_value));
    }
}

MR_RESULT core_log_line(mr_buf *log, const char *update, ...)
{
    mr_result res = MR_FAILURE;
    size_t start = log->len;
    va_list ap;
    mr_buf when;
    mr_buf_init(&when, 64, 0);
    va_start(ap, update);
    MR_GUARD_OUT(core_log_time(&when));
    MR_GUARD_OUT(mr_buf_append_str(log, "{\"time\":"));
    MR_GUARD_OUT(mr_manifest_json_string((const char *)when.data, when.len, log));
    MR_GUARD_OUT(mr_buf_append_str(log, ",\"update\":"));
    MR_GUARD_OUT(mr_manifest_json_string(update, strlen(update), log));
    MR_GUARD_OUT(log_fields(log, ap));
    MR_GUARD_OUT(mr_buf_append_str(log, "}\n"));
    res = MR_SUCCESS;
out:
    va_end(ap);
    mr_buf_free(&when);
    if (!mr_ok(res))
        log->len = start;
    return res;
}

MR_RESULT core_json_str(const char *s, mr_buf *out)
{
    mr_buf_reset(out);
    MR_GUARD(mr_manifest_json_string(s, strlen(s), out));
    return mr_buf_nul_terminate(out);
}

/* The log is stored as one key per appended batch (`updateLog:<16 hex digits>`) so that
 * appending costs the same however long the log is; `updateLogNext` holds the next index. */
MR_RESULT core_log_append(mr_store_txn *t, const mr_buf *lines)
{
    uint64_t next = 0;
    char key[64];
    MR_GUARD(core_read_number(t, K_UPDATE_LOG_NEXT, 10, "update log index", &next));
    (void)snprintf(key, sizeof(key), "%s%016llx", P_UPDATE_LOG, (unsigned long long)next); /* fits */
    MR_GUARD(mr_store_put(t, key, lines->data, lines->len));
    (void)snprintf(key, sizeof(key), "%llu", (unsigned long long)next + 1);
    return core_put_str(t, K_UPDATE_LOG_NEXT, key);
}

MR_RESULT core_log_read(mr_store_txn *t, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_store_list list = {0};
    MR_GUARD(mr_store_scan(t, P_UPDATE_LOG, &list));
    for (size_t i = 0; i < list.count; i++)
        MR_GUARD_OUT(mr_buf_append(out, list.items[i].value.ptr, list.items[i].value.len));
    res = MR_SUCCESS;
out:
    mr_store_list_free(&list);
    return res;
}

MR_RESULT core_names_text(const char *const *names, size_t n, mr_buf *out)
{
    MR_GUARD(mr_buf_append_u8(out, '['));
    for (size_t i = 0; i < n; i++)
        MR_GUARD(mr_buf_printf(out, "%s%s", i ? " " : "", names[i]));
    MR_GUARD(mr_buf_append_u8(out, ']'));
    return mr_buf_nul_terminate(out);
}
