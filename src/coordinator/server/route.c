/* SPDX-License-Identifier: Apache-2.0 */
/* Exact-match routing with Go ServeMux path cleaning, and query-string decoding. */
#include <string.h>

#include "common/alloc.h"
#include "common/text.h"
#include "coordinator/server/internal.h"

MR_RESULT mr_srv_router_add(mr_srv_router *rt, const char *method, const char *path,
                            unsigned flags, bool grpc, mr_srv_handler_fn fn, void *arg)
{
    MR_ENSURE_REF(fn);
    MR_ENSURE(path[0] == '/', MR_ERR_USAGE, "route path must start with '/'");
    for (size_t i = 0; i < rt->n; i++)
        MR_ENSURE(strcmp(rt->v[i].method, method) != 0 || strcmp(rt->v[i].path, path) != 0,
                  MR_ERR_USAGE, "route %s %s registered twice", method, path);
    if (rt->n == rt->cap) {
        size_t ncap = rt->cap ? rt->cap * 2 : 16;
        mr_srv_route_ent *nv = mr_realloc(rt->v, ncap * sizeof(*nv));
        MR_ENSURE_ALLOC(nv);
        rt->v = nv;
        rt->cap = ncap;
    }
    mr_srv_route_ent *e = &rt->v[rt->n];
    memset(e, 0, sizeof(*e));
    e->method = mr_strdup(method);
    e->path = mr_strdup(path);
    if (e->method == NULL || e->path == NULL) {
        mr_free(e->method);
        mr_free(e->path);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    e->flags = flags;
    e->grpc = grpc;
    e->fn = fn;
    e->arg = arg;
    rt->n++;
    return MR_SUCCESS;
}

void mr_srv_router_free(mr_srv_router *rt)
{
    for (size_t i = 0; i < rt->n; i++) {
        mr_free(rt->v[i].method);
        mr_free(rt->v[i].path);
    }
    mr_free(rt->v);
    memset(rt, 0, sizeof(*rt));
}

MR_RESULT mr_srv_router_match(const mr_srv_router *rt, const char *method, const char *path,
                              const char *query, mr_srv_route_outcome *outcome,
                              const mr_srv_route_ent **ent, mr_buf *redirect)
{
    mr_result res = MR_FAILURE;
    mr_buf clean;
    mr_buf_init(&clean, 0, 0);
    *ent = NULL;
    MR_GUARD_OUT(mr_srv_path_clean(path, &clean));
    if (strcmp((const char *)clean.data, path) != 0 && strcmp(method, "CONNECT") != 0) {
        MR_GUARD_OUT(mr_srv_path_escape((const char *)clean.data, redirect));
        if (query != NULL && query[0] != '\0') {
            MR_GUARD_OUT(mr_buf_append_u8(redirect, '?'));
            MR_GUARD_OUT(mr_buf_append_str(redirect, query));
        }
        MR_GUARD_OUT(mr_buf_nul_terminate(redirect));
        *outcome = MR_SRV_ROUTE_REDIRECT;
        res = MR_SUCCESS;
        goto out;
    }
    *outcome = MR_SRV_ROUTE_NO_MATCH;
    for (size_t i = 0; i < rt->n; i++) {
        if (strcmp(rt->v[i].path, path) == 0 && strcmp(rt->v[i].method, method) == 0) {
            *ent = &rt->v[i];
            *outcome = MR_SRV_ROUTE_FOUND;
            break;
        }
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&clean);
    return res;
}

/* ---- query strings ---- */

/* Go's QueryUnescape of s[0:n] into out (NUL-terminated). A decoded NUL is refused: the values
 * are used as C strings (a name must not end early). */
static MR_RESULT query_unescape(const char *s, size_t n, mr_buf *out)
{
    return mr_percent_decode(s, n, MR_PCT_STRICT | MR_PCT_PLUS_SPACE | MR_PCT_NO_NUL, out);
}

static MR_RESULT list_push(mr_srv_strlist *l, mr_buf *val)
{
    char **nv = mr_realloc(l->v, (l->n + 1) * sizeof(*nv));
    MR_ENSURE_ALLOC(nv);
    l->v = nv;
    size_t len = 0;
    char *s = (char *)mr_buf_steal(val, &len);
    if (s == NULL) {
        s = mr_strdup("");
        MR_ENSURE_ALLOC(s);
    }
    l->v[l->n++] = s;
    return MR_SUCCESS;
}

/* One "key=value" pair: appends the value when the key matches. */
static MR_RESULT query_pair(const char *p, size_t n, const char *key, mr_srv_strlist *out)
{
    mr_result res = MR_FAILURE;
    mr_buf k, v;
    mr_buf_init(&k, 0, 0);
    mr_buf_init(&v, 0, 0);
    MR_ENSURE_OUT(memchr(p, ';', n) == NULL, MR_ERR_USAGE,
                  "invalid semicolon separator in query");
    const char *eq = memchr(p, '=', n);
    size_t klen = eq != NULL ? (size_t)(eq - p) : n;
    MR_GUARD_OUT(query_unescape(p, klen, &k));
    if (eq != NULL)
        MR_GUARD_OUT(query_unescape(eq + 1, n - klen - 1, &v));
    else
        MR_GUARD_OUT(mr_buf_nul_terminate(&v));
    if (strcmp(k.data != NULL ? (const char *)k.data : "", key) == 0)
        MR_GUARD_OUT(list_push(out, &v));
    res = MR_SUCCESS;
out:
    mr_buf_free(&k);
    mr_buf_free(&v);
    return res;
}

MR_RESULT mr_srv_query_values(const char *query, const char *key, bool strict,
                              mr_srv_strlist *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = query != NULL ? query : "";
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (n > 0) {
            mr_error_clear();
            if (!mr_ok(query_pair(p, n, key, out))) {
                if (strict || mr_error_get()->cat == MR_ERR_INTERNAL) {
                    mr_srv_strlist_free(out);
                    return MR_FAILURE;
                }
            }
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return MR_SUCCESS;
}

void mr_srv_strlist_free(mr_srv_strlist *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        mr_free(l->v[i]);
    mr_free(l->v);
    l->v = NULL;
    l->n = 0;
}
