/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/result.h"

static mr_log_level g_level = MR_LOG_INFO;
static mr_log_format g_format = MR_LOG_JSON;
static int g_fd = 2;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_explicit;
static char g_prefix[32];

static const char *level_name(mr_log_level l)
{
    static const char *names[] = {"debug", "info", "warn", "error", "fatal"};
    return (unsigned)l < MR_ARRAY_LEN(names) ? names[l] : "info";
}

static void env_defaults(void)
{
    if (g_explicit)
        return;
    mr_log_init_from_env(false);
}

void mr_log_init(mr_log_level level, mr_log_format format)
{
    g_explicit = true;
    g_level = level;
    g_format = format;
}

void mr_log_init_from_env(bool dev_mode)
{
    const char *fmt = mr_config_get("EDG_LOG_FORMAT");
    const char *lvl = mr_config_get("EDG_LOG_LEVEL");
    mr_log_level level = dev_mode ? MR_LOG_DEBUG : MR_LOG_INFO;
    mr_log_format format = dev_mode ? MR_LOG_CONSOLE : MR_LOG_JSON;
    if (fmt != NULL && strcasecmp(fmt, "console") == 0)
        format = MR_LOG_CONSOLE;
    else if (fmt != NULL && strcasecmp(fmt, "json") == 0)
        format = MR_LOG_JSON;
    if (mr_config_bool("EDG_DEBUG_LOGGING"))
        level = MR_LOG_DEBUG;
    if (lvl != NULL) {
        for (int l = MR_LOG_DEBUG; l <= MR_LOG_FATAL; l++)
            if (strcasecmp(lvl, level_name((mr_log_level)l)) == 0)
                level = (mr_log_level)l;
    }
    mr_log_init(level, format);
}

bool mr_log_enabled(mr_log_level level)
{
    (void)pthread_once(&g_once, env_defaults);
    return level >= g_level;
}

void mr_log_set_fd(int fd) { g_fd = fd; }

void mr_log_set_prefix(const char *prefix)
{
    (void)snprintf(g_prefix, sizeof(g_prefix), "%s", prefix != NULL ? prefix : "");
}

/* Appends a JSON string literal (quoted, escaped) for s. */
static void json_str(mr_buf *b, const char *s)
{
    json_t *j = json_string(s != NULL ? s : "");
    if (j == NULL) /* invalid UTF-8: keep the bytes, the line is for humans */
        j = json_string_nocheck(s);
    char local[512];
    size_t n = j == NULL ? 0 : json_dumpb(j, local, sizeof(local), JSON_ENCODE_ANY);
    if (n == 0) {
        MR_IGNORE(mr_buf_append_str(b, "\"\""));
    } else if (n <= sizeof(local)) {
        MR_IGNORE(mr_buf_append(b, local, n));
    } else if (mr_ok(mr_buf_reserve(b, n))) {
        b->len += json_dumpb(j, (char *)b->data + b->len, n, JSON_ENCODE_ANY);
    }
    json_decref(j);
}

/* Appends text with control characters escaped, so that text from a peer (e.g. an error
 * message it sent) cannot forge extra console log lines. */
static void console_text(mr_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            MR_IGNORE(mr_buf_printf(b, "\\x%02x", c));
        else
            MR_IGNORE(mr_buf_append_u8(b, c));
    }
}

static void fields_json(mr_buf *b, va_list ap, bool leading_comma)
{
    bool first = !leading_comma;
    for (;;) {
        mr_field f = va_arg(ap, mr_field);
        if (f.type == MR_FT_END)
            break;
        if (!first)
            MR_IGNORE(mr_buf_append_str(b, leading_comma ? "," : ", "));
        first = false;
        json_str(b, f.key);
        MR_IGNORE(mr_buf_append_str(b, leading_comma ? ":" : ": "));
        switch (f.type) {
        case MR_FT_STR:
            json_str(b, f.v.s);
            break;
        case MR_FT_INT:
            MR_IGNORE(mr_buf_printf(b, "%lld", f.v.i));
            break;
        case MR_FT_UINT:
            MR_IGNORE(mr_buf_printf(b, "%llu", f.v.u));
            break;
        case MR_FT_BOOL:
            MR_IGNORE(mr_buf_append_str(b, f.v.b ? "true" : "false"));
            break;
        case MR_FT_FLOAT:
            MR_IGNORE(mr_buf_printf(b, "%.17g", f.v.d));
            break;
        case MR_FT_END:
            break;
        }
    }
}

void mr_log_(mr_log_level level, const char *file, int line, const char *msg, ...)
{
    if (!mr_log_enabled(level))
        return;
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    mr_buf b, pm;
    mr_buf_init(&b, (size_t)64 * 1024, 0);
    mr_buf_init(&pm, (size_t)64 * 1024, 0);
    const char *text = msg != NULL ? msg : "";
    if (g_prefix[0] != '\0' && mr_ok(mr_buf_append_str(&pm, g_prefix)) &&
        mr_ok(mr_buf_append_str(&pm, text)) && mr_ok(mr_buf_nul_terminate(&pm)))
        text = (const char *)pm.data;
    va_list ap;
    va_start(ap, msg);
    if (g_format == MR_LOG_JSON) {
        MR_IGNORE(mr_buf_printf(&b, "{\"level\":\"%s\",\"ts\":%lld.%06ld,\"caller\":", level_name(level),
                            (long long)ts.tv_sec, ts.tv_nsec / 1000));
        char caller[256];
        (void)snprintf(caller, sizeof(caller), "%s:%d", file, line);
        json_str(&b, caller);
        MR_IGNORE(mr_buf_append_str(&b, ",\"msg\":"));
        json_str(&b, text);
        fields_json(&b, ap, true);
        MR_IGNORE(mr_buf_append_str(&b, "}\n"));
    } else {
        struct tm tm;
        char when[40];
        (void)gmtime_r(&ts.tv_sec, &tm);
        (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        char upper[8];
        const char *ln = level_name(level);
        size_t i = 0;
        for (; ln[i] != '\0' && i + 1 < sizeof(upper); i++)
            upper[i] = (char)(ln[i] - 'a' + 'A');
        upper[i] = '\0';
        MR_IGNORE(mr_buf_printf(&b, "%s.%03ldZ\t%s\t%s:%d\t", when, ts.tv_nsec / 1000000, upper,
                                file, line));
        console_text(&b, text);
        size_t before = b.len;
        MR_IGNORE(mr_buf_append_str(&b, "\t{"));
        size_t mark = b.len;
        fields_json(&b, ap, false);
        if (b.len == mark)
            b.len = before;
        else
            MR_IGNORE(mr_buf_append_str(&b, "}"));
        MR_IGNORE(mr_buf_append_str(&b, "\n"));
    }
    va_end(ap);
    if (b.data != NULL) {
        size_t off = 0;
        while (off < b.len) {
            ssize_t w = write(g_fd, b.data + off, b.len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    mr_buf_free(&b);
    mr_buf_free(&pm);
}
