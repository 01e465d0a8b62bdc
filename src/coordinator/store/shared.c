/* SPDX-License-Identifier: Apache-2.0 */
/* The shared store backends behind one face (shared.h). */
#include "coordinator/store/shared.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "coordinator/store/etcd_store.h"
#include "coordinator/store/k8s_store.h"

#define DEFAULT_PREFIX "/marblerun/"
#define DEFAULT_STATE "marblerun-state"
#define DEFAULT_SERVICE "coordinator-key-api"
#define DEFAULT_KEK_MAP "marblerun-sealed-kek"
#define KEK_MAP_ENTRIES 256
#define KEK_MAP_ATTEMPTS 8

struct mr_shared {
    mr_shared_kind kind;
    char *endpoints, *prefix, *ca, *cert, *key;      /* etcd */
    char *ns, *state, *service, *sa_dir, *kek_map;    /* kubernetes */
    mr_etcd *etcd;
    mr_k8s *k8s;
    char where[300];
};

static MR_RESULT dup_opt(const char *in, const char *dflt, char **out)
{
    const char *v = in != NULL && in[0] != '\0' ? in : dflt;
    *out = NULL;
    if (v == NULL)
        return MR_SUCCESS;
    *out = mr_strdup(v);
    MR_ENSURE_ALLOC(*out);
    return MR_SUCCESS;
}

static MR_RESULT etcd_client(const mr_shared *s, mr_etcd **out)
{
    mr_etcd_config ec = {.endpoints = s->endpoints, .ca_file = s->ca, .cert_file = s->cert,
                         .key_file = s->key};
    return mr_etcd_open(&ec, out);
}

static MR_RESULT k8s_client(const mr_shared *s, mr_k8s **out)
{
    mr_k8s_config kc = {.ns = s->ns, .sa_dir = s->sa_dir};
    return mr_k8s_open(&kc, out);
}

static MR_RESULT setup(mr_shared *s, const mr_shared_config *cfg)
{
    s->kind = cfg->kind;
    if (cfg->kind == MR_SHARED_ETCD) {
        MR_ENSURE(cfg->etcd_endpoints != NULL && cfg->etcd_endpoints[0] != '\0', MR_ERR_USAGE,
                  "the etcd store needs EDG_COORDINATOR_ETCD_ENDPOINTS");
        MR_GUARD(dup_opt(cfg->etcd_endpoints, NULL, &s->endpoints));
        MR_GUARD(dup_opt(cfg->etcd_prefix, DEFAULT_PREFIX, &s->prefix));
        MR_GUARD(dup_opt(cfg->etcd_ca, NULL, &s->ca));
        MR_GUARD(dup_opt(cfg->etcd_cert, NULL, &s->cert));
        MR_GUARD(dup_opt(cfg->etcd_key, NULL, &s->key));
        MR_ENSURE((s->cert == NULL) == (s->key == NULL), MR_ERR_USAGE,
                  "EDG_COORDINATOR_ETCD_CERT and EDG_COORDINATOR_ETCD_KEY go together");
        (void)snprintf(s->where, sizeof(s->where), "etcd prefix %s", s->prefix);
        return etcd_client(s, &s->etcd);
    }
    MR_ENSURE(cfg->kind == MR_SHARED_KUBERNETES, MR_ERR_USAGE, "unknown shared store");
    MR_GUARD(dup_opt(cfg->k8s_namespace, NULL, &s->ns));
    MR_GUARD(dup_opt(cfg->k8s_state, DEFAULT_STATE, &s->state));
    MR_GUARD(dup_opt(cfg->k8s_service, DEFAULT_SERVICE, &s->service));
    MR_GUARD(dup_opt(cfg->k8s_sa_dir, NULL, &s->sa_dir));
    MR_GUARD(dup_opt(cfg->k8s_kek_map, DEFAULT_KEK_MAP, &s->kek_map));
    MR_GUARD(k8s_client(s, &s->k8s));
    (void)snprintf(s->where, sizeof(s->where), "Secret %s/%s", mr_k8s_namespace(s->k8s),
                   s->state);
    return MR_SUCCESS;
}

MR_RESULT mr_shared_open(const mr_shared_config *cfg, mr_shared **out)
{
    mr_shared *s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC(s);
    if (!mr_ok(setup(s, cfg))) {
        mr_shared_close(s);
        return MR_FAILURE;
    }
    *out = s;
    return MR_SUCCESS;
}

void mr_shared_close(mr_shared *s)
{
    if (s == NULL)
        return;
    mr_etcd_close(s->etcd);
    mr_k8s_close(s->k8s);
    char *strs[] = {s->endpoints, s->prefix, s->ca, s->cert, s->key,
                    s->ns, s->state, s->service, s->sa_dir, s->kek_map};
    for (size_t i = 0; i < MR_ARRAY_LEN(strs); i++)
        mr_free(strs[i]);
    mr_free(s);
}

const char *mr_shared_where(const mr_shared *s) { return s->where; }

MR_RESULT mr_shared_probe(mr_shared *s, bool *has_state)
{
    if (s->kind == MR_SHARED_ETCD)
        return mr_etcd_store_probe(s->etcd, s->prefix, has_state);
    return mr_k8s_store_probe(s->k8s, s->state, has_state);
}

MR_RESULT mr_shared_create(mr_shared *s, mr_slice key, mr_store *initial, bool *created)
{
    if (s->kind == MR_SHARED_ETCD)
        return mr_etcd_store_create(s->etcd, s->prefix, key, initial, created);
    return mr_k8s_store_create(s->k8s, s->state, key, initial, created);
}

MR_RESULT mr_shared_check_key(mr_shared *s, mr_slice key, bool *ok)
{
    if (s->kind == MR_SHARED_ETCD)
        return mr_etcd_store_check_key(s->etcd, s->prefix, key, ok);
    return mr_k8s_store_check_key(s->k8s, s->state, key, ok);
}

MR_RESULT mr_shared_get_meta(mr_shared *s, const char *name, mr_buf *value, bool *found)
{
    if (s->kind == MR_SHARED_ETCD)
        return mr_etcd_store_get_meta(s->etcd, s->prefix, name, value, found);
    return mr_k8s_store_get_meta(s->k8s, s->state, name, value, found);
}

MR_RESULT mr_shared_open_store(mr_shared *s, mr_slice key, const char *const *volatile_prefixes,
                               size_t n_volatile, mr_store **out)
{
    if (s->kind == MR_SHARED_ETCD) {
        mr_etcd *cli = NULL;
        mr_etcd_store_options o = {.prefix = s->prefix, .volatile_prefixes = volatile_prefixes,
                                   .n_volatile = n_volatile};
        MR_GUARD(etcd_client(s, &cli));
        return mr_store_open_etcd(cli, key, &o, out); /* takes cli over */
    }
    mr_k8s *cli = NULL;
    mr_k8s_store_options o = {.name = s->state, .volatile_prefixes = volatile_prefixes,
                              .n_volatile = n_volatile};
    MR_GUARD(k8s_client(s, &cli));
    return mr_store_open_k8s(cli, key, &o, out);
}

MR_RESULT mr_shared_peers(mr_shared *s, const char *static_peers, mr_buf *out)
{
    if (static_peers != NULL && static_peers[0] != '\0')
        MR_GUARD(mr_buf_append_str(out, static_peers));
    if (s->kind == MR_SHARED_KUBERNETES) {
        mr_buf more;
        mr_buf_init(&more, 0, 0);
        mr_result r = mr_k8s_service_peers(s->k8s, s->service, "grpc", &more);
        if (mr_ok(r) && more.len > 0 && out->len > 0)
            r = mr_buf_append_u8(out, ',');
        if (mr_ok(r))
            r = mr_buf_append(out, more.data, more.len);
        mr_buf_free(&more);
        MR_GUARD(r);
    }
    return mr_buf_nul_terminate(out);
}

/* ---- the sealed copies of the state key (kubernetes) ---- */

MR_RESULT mr_shared_kek_get(mr_shared *s, const char *id, mr_buf *out, bool *found)
{
    mr_k8s_obj o = {0};
    *found = false;
    if (s->kind != MR_SHARED_KUBERNETES)
        return MR_SUCCESS;
    MR_GUARD(mr_k8s_get(s->k8s, MR_K8S_CONFIGMAP, s->kek_map, &o));
    const mr_k8s_entry *e = mr_k8s_obj_entry(&o, id);
    mr_result r = MR_SUCCESS;
    if (e != NULL) {
        r = mr_buf_set(out, e->value.data, e->value.len);
        *found = mr_ok(r);
    }
    mr_k8s_obj_free(&o);
    return r;
}

/* The map's entries with id set to blob (added or replaced). */
static MR_RESULT kek_entries(const mr_k8s_obj *o, const char *id, mr_slice blob,
                             mr_k8s_entry **items, size_t *n)
{
    *n = 0;
    *items = mr_calloc(o->count + 1, sizeof(mr_k8s_entry));
    MR_ENSURE_ALLOC(*items);
    bool replaced = false;
    for (size_t i = 0; i <= o->count; i++) {
        const bool last = i == o->count;
        if (last && replaced)
            break;
        const bool mine = last || strcmp(o->items[i].name, id) == 0;
        mr_k8s_entry *d = &(*items)[*n];
        mr_buf_init(&d->value, 0, 0);
        d->name = mr_strdup(mine ? id : o->items[i].name);
        MR_ENSURE_ALLOC(d->name);
        (*n)++;
        MR_GUARD(mine ? mr_buf_set(&d->value, blob.ptr, blob.len)
                      : mr_buf_set(&d->value, o->items[i].value.data, o->items[i].value.len));
        replaced = replaced || mine;
    }
    MR_ENSURE(*n <= KEK_MAP_ENTRIES, MR_ERR_STATE, "kubernetes store: %s has too many entries",
              "the sealed-key ConfigMap");
    return MR_SUCCESS;
}

static void free_entries(mr_k8s_entry *items, size_t n)
{
    for (size_t i = 0; items != NULL && i < n; i++) {
        mr_free(items[i].name);
        mr_buf_free(&items[i].value);
    }
    mr_free(items);
}

static MR_RESULT kek_put_once(mr_shared *s, const char *id, mr_slice blob, bool *conflict)
{
    mr_result res = MR_FAILURE;
    mr_k8s_obj o = {0};
    mr_k8s_entry *items = NULL;
    size_t n = 0;
    char rv[64];
    *conflict = false;
    MR_GUARD_OUT(mr_k8s_get(s->k8s, MR_K8S_CONFIGMAP, s->kek_map, &o));
    const mr_k8s_entry *have = mr_k8s_obj_entry(&o, id);
    if (have != NULL && have->value.len == blob.len &&
        CRYPTO_memcmp(have->value.data, blob.ptr, blob.len) == 0) {
        res = MR_SUCCESS;
        goto out;
    }
    MR_GUARD_OUT(kek_entries(&o, id, blob, &items, &n));
    MR_GUARD_OUT(mr_k8s_put(s->k8s, MR_K8S_CONFIGMAP, s->kek_map, o.found ? o.rv : NULL, items, n,
                            conflict, rv));
    res = MR_SUCCESS;
out:
    free_entries(items, n);
    mr_k8s_obj_free(&o);
    return res;
}

MR_RESULT mr_shared_kek_put(mr_shared *s, const char *id, mr_slice blob)
{
    if (s->kind != MR_SHARED_KUBERNETES)
        return MR_SUCCESS;
    for (int attempt = 0; attempt < KEK_MAP_ATTEMPTS; attempt++) {
        bool conflict = false;
        MR_GUARD(kek_put_once(s, id, blob, &conflict));
        if (!conflict)
            return MR_SUCCESS;
    }
    MR_BAIL(MR_ERR_UNAVAILABLE, "kubernetes API unavailable: %s keeps changing", s->kek_map);
}
