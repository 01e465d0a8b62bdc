/* SPDX-License-Identifier: Apache-2.0 */
#include "common/result.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local mr_error tls_err;

/* The specific categories and their names; each maps like its class (see result.h). */
static const struct {
    mr_errcat cat;
    const char *name;
} specific[] = {
    {MR_ERR_CONFLICT, "conflict"},
    {MR_ERR_TOO_LARGE, "too-large"},
    {MR_ERR_CORRUPT, "corrupt"},
};

static bool is_specific(mr_errcat cat)
{
    for (size_t i = 0; i < MR_ARRAY_LEN(specific); i++)
        if (specific[i].cat == cat)
            return true;
    return false;
}

mr_errcat mr_errcat_class(mr_errcat cat)
{
    unsigned i = (unsigned)cat;
    if (i < MR_ERR__COUNT)
        return cat;
    return is_specific(cat) ? (mr_errcat)(i & ((1u << MR_ERR_KIND_SHIFT) - 1)) : MR_ERR_INTERNAL;
}

MR_PRINTF(4, 0)
static void set_va(mr_errcat cat, const char *file, int line, const char *fmt, va_list ap)
{
    tls_err.cat = mr_errcat_class(cat);
    tls_err.kind = is_specific(cat) ? cat : tls_err.cat;
    tls_err.file = file;
    tls_err.line = line;
    if (vsnprintf(tls_err.msg, sizeof(tls_err.msg), fmt, ap) < 0)
        tls_err.msg[0] = '\0';
}

void mr_error_set(mr_errcat cat, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_va(cat, file, line, fmt, ap);
    va_end(ap);
}

void mr_error_set_ossl(mr_errcat cat, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_va(cat, file, line, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_error();
    if (e != 0) {
        const char *reason = ERR_reason_error_string(e);
        size_t n = strlen(tls_err.msg);
        if (reason != NULL && n + 3 < sizeof(tls_err.msg))
            if (snprintf(tls_err.msg + n, sizeof(tls_err.msg) - n, ": %s", reason) < 0)
                tls_err.msg[n] = '\0';
    }
    ERR_clear_error();
}

void mr_error_prefix(const char *fmt, ...)
{
    char prefix[MR_ERR_MSG_MAX];
    char old[MR_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    memcpy(old, tls_err.msg, sizeof(old));
    if (snprintf(tls_err.msg, sizeof(tls_err.msg), "%s: %s", prefix, old) < 0)
        tls_err.msg[0] = '\0'; /* truncation is fine; the message stays terminated */
}

const mr_error *mr_error_get(void) { return &tls_err; }

void mr_error_take(mr_error *out)
{
    *out = tls_err;
    mr_error_clear();
}

void mr_error_restore(const mr_error *e) { tls_err = *e; }

void mr_error_clear(void) { memset(&tls_err, 0, sizeof(tls_err)); }

bool mr_error_is(mr_errcat cat)
{
    return is_specific(cat) ? tls_err.kind == cat : tls_err.cat == mr_errcat_class(cat);
}

/* The one table that maps categories to the outside world (by class; a specific category
 * maps like its class). gRPC codes are the numeric
 * values of google.rpc.Code. The CLI exits 1 on every error, as MarbleRun's does; usage
 * errors exit 1 too because cobra does. */
static const struct {
    const char *name;
    int http;
    int grpc;
    int exit_code;
} cat_table[MR_ERR__COUNT] = {
    [MR_ERR_NONE] = {"none", 200, 0, 0},
    [MR_ERR_USAGE] = {"usage", 400, 3 /* INVALID_ARGUMENT */, 1},
    [MR_ERR_AUTH] = {"auth", 401, 16 /* UNAUTHENTICATED */, 1},
    [MR_ERR_NOT_FOUND] = {"not-found", 404, 5 /* NOT_FOUND */, 1},
    [MR_ERR_STATE] = {"state", 400, 9 /* FAILED_PRECONDITION */, 1},
    [MR_ERR_ATTESTATION] = {"attestation", 400, 7 /* PERMISSION_DENIED */, 1},
    [MR_ERR_PROTOCOL] = {"protocol", 400, 3 /* INVALID_ARGUMENT */, 1},
    [MR_ERR_IO] = {"io", 500, 14 /* UNAVAILABLE */, 1},
    [MR_ERR_INTERNAL] = {"internal", 500, 13 /* INTERNAL */, 1},
    [MR_ERR_UNAVAILABLE] = {"unavailable", 503, 14 /* UNAVAILABLE */, 1},
};

static unsigned idx(mr_errcat cat) { return (unsigned)mr_errcat_class(cat); }

const char *mr_errcat_name(mr_errcat cat)
{
    for (size_t i = 0; i < MR_ARRAY_LEN(specific); i++)
        if (specific[i].cat == cat)
            return specific[i].name;
    return cat_table[idx(cat)].name;
}
int mr_errcat_http(mr_errcat cat) { return cat_table[idx(cat)].http; }
int mr_errcat_grpc(mr_errcat cat) { return cat_table[idx(cat)].grpc; }
int mr_errcat_exit(mr_errcat cat) { return cat_table[idx(cat)].exit_code; }
