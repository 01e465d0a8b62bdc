/* SPDX-License-Identifier: Apache-2.0 */
/* Read, scan and write sets of the shared backends' transactions (txn_sets.h). */
#include "coordinator/store/txn_sets.h"

#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "coordinator/store/store.h"

static MR_RESULT grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return MR_SUCCESS;
    size_t nc = *cap != 0 ? *cap * 2 : 8;
    void *nv = mr_realloc(*v, nc * elem);
    MR_ENSURE_ALLOC(nv);
    *v = nv;
    *cap = nc;
    return MR_SUCCESS;
}

MR_RESULT mr_txn_note_read(mr_txn_sets *t, const char *key, uint64_t ver)
{
    for (size_t i = 0; i < t->n_reads; i++)
        if (strcmp(t->reads[i].key, key) == 0)
            return MR_SUCCESS;
    MR_GUARD(grow((void **)&t->reads, &t->cap_reads, t->n_reads, sizeof(*t->reads)));
    char *k = mr_strdup(key);
    MR_ENSURE_ALLOC(k);
    t->reads[t->n_reads++] = (mr_txn_read){.key = k, .ver = ver};
    return MR_SUCCESS;
}

MR_RESULT mr_txn_note_scan(mr_txn_sets *t, const char *prefix)
{
    MR_GUARD(grow((void **)&t->scans, &t->cap_scans, t->n_scans, sizeof(*t->scans)));
    char *p = mr_strdup(prefix);
    MR_ENSURE_ALLOC(p);
    t->scans[t->n_scans++] = p;
    return MR_SUCCESS;
}

MR_RESULT mr_txn_note_write(mr_txn_sets *t, const char *key, const uint8_t *v, size_t len,
                            bool del, bool plain)
{
    MR_ENSURE(len <= MR_STORE_VALUE_MAX, MR_ERR_TOO_LARGE, "store value of %s too large", key);
    mr_txn_write *w = NULL;
    for (size_t i = 0; i < t->n_writes && w == NULL; i++)
        if (t->writes[i].plain == plain && strcmp(t->writes[i].key, key) == 0)
            w = &t->writes[i];
    if (w == NULL) {
        MR_GUARD(grow((void **)&t->writes, &t->cap_writes, t->n_writes, sizeof(*t->writes)));
        w = &t->writes[t->n_writes];
        w->key = mr_strdup(key);
        MR_ENSURE_ALLOC(w->key);
        mr_buf_init(&w->val, 0, MR_BUF_SECRET);
        w->plain = plain;
        t->n_writes++;
    }
    w->del = del;
    mr_buf_reset(&w->val);
    return del ? MR_SUCCESS : mr_buf_append(&w->val, v, len);
}

void mr_txn_sets_free(mr_txn_sets *t)
{
    for (size_t i = 0; i < t->n_reads; i++)
        mr_free(t->reads[i].key);
    for (size_t i = 0; i < t->n_scans; i++)
        mr_free(t->scans[i]);
    for (size_t i = 0; i < t->n_writes; i++) {
        mr_free(t->writes[i].key);
        mr_buf_free(&t->writes[i].val);
    }
    mr_free(t->reads);
    mr_free(t->scans);
    mr_free(t->writes);
    memset(t, 0, sizeof(*t));
}

MR_RESULT mr_prefix_set_copy(mr_prefix_set *p, const char *const *prefixes, size_t n)
{
    if (n == 0)
        return MR_SUCCESS;
    p->v = mr_calloc(n, sizeof(char *));
    MR_ENSURE_ALLOC(p->v);
    for (size_t i = 0; i < n; i++) {
        p->v[i] = mr_strdup(prefixes[i]);
        MR_ENSURE_ALLOC(p->v[i]);
        p->n++;
    }
    return MR_SUCCESS;
}

bool mr_prefix_set_match(const mr_prefix_set *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strncmp(key, p->v[i], strlen(p->v[i])) == 0)
            return true;
    return false;
}

void mr_prefix_set_free(mr_prefix_set *p)
{
    for (size_t i = 0; i < p->n; i++)
        mr_free(p->v[i]);
    mr_free((void *)p->v);
    p->v = NULL;
    p->n = 0;
}

uint64_t mr_store_mono_us(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void mr_store_lat_note(uint64_t *lat, uint64_t *sum_us, uint64_t us)
{
    size_t k = 0;
    double bound = MR_STORE_LAT_BASE_US;
    while (k + 1 < MR_STORE_LAT_BUCKETS && (double)us > bound) {
        k++;
        bound *= 1.4142135623730951; /* sqrt(2): two buckets per doubling */
    }
    lat[k]++;
    *sum_us += us;
}
