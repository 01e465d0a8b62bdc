/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "common/alloc.h"
#include "coordinator/core/core_int.h"
#include "crypto/x509.h"

#define SECRET_PART_MAX ((size_t)4 << 20)

MR_RESULT core_secret_encode(const core_secret *s, mr_buf *out)
{
    const mr_buf *parts[3] = {&s->cert_der, &s->priv, &s->pub};
    MR_GUARD(mr_buf_append_u64le(out, s->valid_for));
    for (size_t i = 0; i < 3; i++) {
        MR_ENSURE(parts[i]->len <= SECRET_PART_MAX, MR_ERR_TOO_LARGE, "secret value too large");
        MR_GUARD(mr_buf_append_u32le(out, (uint32_t)parts[i]->len));
        MR_GUARD(mr_buf_append(out, parts[i]->data, parts[i]->len));
    }
    return MR_SUCCESS;
}

static MR_RESULT read_part(mr_cursor *c, mr_buf *dst)
{
    uint32_t n;
    mr_slice v;
    MR_GUARD(mr_cursor_u32le(c, &n));
    MR_GUARD(mr_cursor_view(c, n, &v));
    return mr_buf_set(dst, v.ptr, v.len);
}

MR_RESULT core_secret_decode(mr_slice in, core_secret *s)
{
    mr_cursor c;
    mr_cursor_init(&c, in.ptr, in.len);
    mr_buf_init(&s->cert_der, 0, 0);
    mr_buf_init(&s->priv, 0, MR_BUF_SECRET);
    mr_buf_init(&s->pub, 0, MR_BUF_SECRET);
    MR_GUARD(mr_cursor_u64le(&c, &s->valid_for));
    MR_GUARD(read_part(&c, &s->cert_der));
    MR_GUARD(read_part(&c, &s->priv));
    MR_GUARD(read_part(&c, &s->pub));
    MR_ENSURE(mr_cursor_remaining(&c) == 0, MR_ERR_PROTOCOL, "stored secret has trailing data");
    if (s->cert_der.len > 0)
        MR_GUARD(mr_x509_from_der(mr_buf_slice(&s->cert_der), &s->cert));
    s->has_value = s->cert_der.len > 0 || s->priv.len > 0 || s->pub.len > 0;
    return MR_SUCCESS;
}

void core_secret_clear(core_secret *s)
{
    mr_free(s->name);
    mr_buf_free(&s->cert_der);
    mr_buf_free(&s->priv);
    mr_buf_free(&s->pub);
    X509_free(s->cert);
    memset(s, 0, sizeof(*s));
}

void core_secret_set_free(core_secret_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        core_secret_clear(&set->items[i]);
    mr_free(set->items);
    set->items = NULL;
    set->count = 0;
}

const core_secret *core_secret_find(const core_secret_set *set, const char *name)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set->items[mid].name, name);
        if (c == 0)
            return &set->items[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

MR_RESULT core_secret_set_load(mr_store_txn *t, const char *prefix, const mr_manifest *m,
                               core_secret_set *out)
{
    mr_result res = MR_FAILURE;
    mr_store_list list = {0};
    size_t plen = strlen(prefix);
    MR_GUARD(mr_store_scan(t, prefix, &list));
    out->items = mr_calloc(list.count, sizeof(core_secret));
    MR_ENSURE_ALLOC_OUT(out->items);
    for (size_t i = 0; i < list.count; i++) {
        core_secret *s = &out->items[out->count];
        const char *name = list.items[i].key + plen;
        s->def = m != NULL ? mr_manifest_find_secret(m, name) : NULL;
        if (s->def == NULL)
            continue; /* not (or no longer) in the manifest */
        s->name = mr_strdup(name);
        MR_ENSURE_ALLOC_OUT(s->name);
        out->count++;
        if (!mr_ok(core_secret_decode(list.items[i].value, s))) {
            mr_error_prefix("loading secret %s", name);
            goto out;
        }
    }
    res = MR_SUCCESS;
out:
    mr_store_list_free(&list);
    if (!mr_ok(res))
        core_secret_set_free(out);
    return res;
}

MR_RESULT core_secret_copy(const core_secret *src, core_secret *dst)
{
    memset(dst, 0, sizeof(*dst));
    mr_buf_init(&dst->cert_der, 0, 0);
    mr_buf_init(&dst->priv, 0, MR_BUF_SECRET);
    mr_buf_init(&dst->pub, 0, MR_BUF_SECRET);
    dst->name = mr_strdup(src->name);
    MR_ENSURE_ALLOC(dst->name);
    dst->def = src->def;
    dst->valid_for = src->valid_for;
    dst->has_value = src->has_value;
    MR_GUARD(mr_buf_set(&dst->cert_der, src->cert_der.data, src->cert_der.len));
    MR_GUARD(mr_buf_set(&dst->priv, src->priv.data, src->priv.len));
    MR_GUARD(mr_buf_set(&dst->pub, src->pub.data, src->pub.len));
    if (src->cert != NULL) {
        X509_up_ref(src->cert);
        dst->cert = src->cert;
    }
    return MR_SUCCESS;
}
