/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured logging to stderr.
 *
 * Default output is one JSON object per line in the shape of zap's production encoder:
 *   {"level":"info","ts":1700000000.123456,"caller":"coordinator/core.c:42","msg":"...",<fields>}
 * With EDG_LOG_FORMAT=console (or mr_log_init(..., MR_LOG_CONSOLE)) lines are human readable:
 *   2024-01-02T03:04:05.123Z  INFO  coordinator/core.c:42  msg  {"k": "v"}
 *
 * Fields are typed and passed as a MR_F_* list; the macros append the terminator:
 *   MR_LOG_INFO("marble activated", MR_F_STR("marbleType", t), MR_F_INT("count", n));
 * There is deliberately no field type for bytes or keys: secrets never reach a log line.
 * Thread-safe: each line is formatted in a local buffer and written with one write(2).
 */
#ifndef MR_COMMON_LOG_H
#define MR_COMMON_LOG_H

#include <stdbool.h>

typedef enum mr_log_level {
    MR_LOG_DEBUG = 0,
    MR_LOG_INFO,
    MR_LOG_WARN,
    MR_LOG_ERROR,
    MR_LOG_FATAL,
} mr_log_level;

typedef enum mr_log_format { MR_LOG_JSON = 0, MR_LOG_CONSOLE } mr_log_format;

typedef enum mr_field_type {
    MR_FT_END = 0,
    MR_FT_STR,
    MR_FT_INT,
    MR_FT_UINT,
    MR_FT_BOOL,
    MR_FT_FLOAT,
} mr_field_type;

typedef struct mr_field {
    mr_field_type type;
    const char *key;
    union {
        const char *s;
        long long i;
        unsigned long long u;
        int b;
        double d;
    } v;
} mr_field;

#define MR_F_STR(k, x) ((mr_field){.type = MR_FT_STR, .key = (k), .v.s = (x)})
#define MR_F_INT(k, x) ((mr_field){.type = MR_FT_INT, .key = (k), .v.i = (long long)(x)})
#define MR_F_UINT(k, x)                                                                       \
    ((mr_field){.type = MR_FT_UINT, .key = (k), .v.u = (unsigned long long)(x)})
#define MR_F_BOOL(k, x) ((mr_field){.type = MR_FT_BOOL, .key = (k), .v.b = !!(x)})
#define MR_F_FLOAT(k, x) ((mr_field){.type = MR_FT_FLOAT, .key = (k), .v.d = (double)(x)})
#define MR_F_END ((mr_field){.type = MR_FT_END})
/* The current thread's error (category and message) as two fields. */
#define MR_F_ERR() MR_F_STR("error", mr_error_get()->msg)

/* Sets level and format. Without a call: info level, JSON, unless EDG_LOG_FORMAT=console or
 * EDG_LOG_LEVEL=debug|info|warn|error are set (read once, on first use). */
void mr_log_init(mr_log_level level, mr_log_format format);
void mr_log_init_from_env(bool dev_mode);
bool mr_log_enabled(mr_log_level level);
/* A text put before every message, like Go's log.SetPrefix (the premain's "[PreMain] ").
 * Copied (up to 31 bytes); NULL or "" = none, the default. Set it before other threads log. */
void mr_log_set_prefix(const char *prefix);
/* Redirects output to fd (default 2). For tests. */
void mr_log_set_fd(int fd);

void mr_log_(mr_log_level level, const char *file, int line, const char *msg, ...);

#define MR_LOG_DEBUG(...) mr_log_(MR_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__, MR_F_END)
#define MR_LOG_INFO(...) mr_log_(MR_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__, MR_F_END)
#define MR_LOG_WARN(...) mr_log_(MR_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__, MR_F_END)
#define MR_LOG_ERROR(...) mr_log_(MR_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__, MR_F_END)
#define MR_LOG_FATAL(...) mr_log_(MR_LOG_FATAL, __FILE__, __LINE__, __VA_ARGS__, MR_F_END)

#endif
