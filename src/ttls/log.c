/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log lines of the preloaded library, in the layout of common/log.c (console by default,
 * EDG_LOG_FORMAT=json for one JSON object per line) with the prefix "[TTLS] ". It is a
 * separate writer because common/log.c quotes with jansson, and the library loaded into every
 * marble process links nothing but libc and OpenSSL. Strings go through mr_json_quote.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/text.h"
#include "ttls/ttls.h"

static bool g_json;
static mr_ttls_level g_min = MR_TTLS_INFO;
static int g_fd = 2;

void mr_ttls_log_init(void)
{
    const char *f = mr_config_get("EDG_LOG_FORMAT");
    g_json = f != NULL && strcasecmp(f, "json") == 0;
    g_min = mr_config_bool("EDG_DEBUG_LOGGING") ? MR_TTLS_DEBUG : MR_TTLS_INFO;
}

void mr_ttls_log_set_fd(int fd) { g_fd = fd; }

static const char *level_name(mr_ttls_level l, bool upper)
{
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    static const char *const up[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    unsigned i = (unsigned)l < 4 ? (unsigned)l : 3;
    return upper ? up[i] : lower[i];
}

static void quoted(mr_buf *b, const char *s)
{
    MR_IGNORE(mr_json_quote(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0));
}

void mr_ttls_log(mr_ttls_level level, const char *msg, ...)
{
    if (level < g_min || g_fd < 0)
        return;
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    mr_buf b, text;
    mr_buf_init(&b, (size_t)16 * 1024, 0);
    mr_buf_init(&text, (size_t)8 * 1024, 0);
    MR_IGNORE(mr_buf_printf(&text, "[TTLS] %s", msg));
    MR_IGNORE(mr_buf_nul_terminate(&text));
    const char *t = text.data != NULL ? (const char *)text.data : msg;
    va_list ap;
    va_start(ap, msg);
    if (g_json) {
        MR_IGNORE(mr_buf_printf(&b, "{\"level\":\"%s\",\"ts\":%lld.%06ld,\"caller\":\"ttls\",\"msg\":",
                                level_name(level, false), (long long)ts.tv_sec, ts.tv_nsec / 1000));
        quoted(&b, t);
        for (;;) {
            const char *k = va_arg(ap, const char *);
            if (k == NULL)
                break;
            const char *v = va_arg(ap, const char *);
            MR_IGNORE(mr_buf_append_u8(&b, ','));
            quoted(&b, k);
            MR_IGNORE(mr_buf_append_u8(&b, ':'));
            quoted(&b, v);
        }
        MR_IGNORE(mr_buf_append_str(&b, "}\n"));
    } else {
        struct tm tm;
        char when[40];
        (void)gmtime_r(&ts.tv_sec, &tm);
        (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        MR_IGNORE(mr_buf_printf(&b, "%s.%03ldZ\t%s\tttls\t", when, ts.tv_nsec / 1000000,
                                level_name(level, true)));
        for (const char *p = t; *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;
            if (c < 0x20 || c == 0x7f)
                MR_IGNORE(mr_buf_printf(&b, "\\x%02x", c));
            else
                MR_IGNORE(mr_buf_append_u8(&b, c));
        }
        bool first = true;
        for (;;) {
            const char *k = va_arg(ap, const char *);
            if (k == NULL)
                break;
            const char *v = va_arg(ap, const char *);
            MR_IGNORE(mr_buf_append_str(&b, first ? "\t{" : ", "));
            first = false;
            quoted(&b, k);
            MR_IGNORE(mr_buf_append_str(&b, ": "));
            quoted(&b, v);
        }
        if (!first)
            MR_IGNORE(mr_buf_append_u8(&b, '}'));
        MR_IGNORE(mr_buf_append_u8(&b, '\n'));
    }
    va_end(ap);
    size_t off = 0;
    while (b.data != NULL && off < b.len) {
        ssize_t w = write(g_fd, b.data + off, b.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    mr_buf_free(&b);
    mr_buf_free(&text);
}
