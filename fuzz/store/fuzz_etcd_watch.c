/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-etcd_watch: what the etcd store does with a WatchResponse from etcd (outside bytes: a
 * member, or anyone on the path to it). The bytes are a serialized WatchResponse; it is
 * applied to a replica as the watch thread would, and then every replica entry is read back
 * through a store transaction. It must never crash, leak or read out of bounds; values that
 * do not open are refused on read.
 *
 * First byte = mode: 0 values as sent; 1 the harness seals every value under its key (as a
 * Coordinator would have), so the fuzzer reaches the replica's plaintext paths too.
 * Compaction responses are ignored (they would reload over the network).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/etcd_store_int.h"

static const uint8_t key[MR_STORE_DEK_LEN] = {0x45, 0x54, 0x43, 0x44, 1, 2, 3, 4, 5, 6, 7, 8,
                                              9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                              21, 22, 23, 24, 25, 26, 27, 28};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
    return 0;
}

/* Points every value at its sealed form; orig keeps what unpack allocated (restored before
 * the message is freed). */
static void seal_all(estore *s, Etcdserverpb__WatchResponse *r, mr_buf *sealed,
                     ProtobufCBinaryData *orig, bool *swapped)
{
    for (size_t i = 0; i < r->n_events && i < 64; i++) {
        Etcdserverpb__KeyValue *kv = r->events[i]->kv;
        if (kv == NULL)
            continue;
        mr_buf_init(&sealed[i], 0, 0);
        if (mr_ok(es_seal_value(MR_SLICE(s->key, MR_STORE_DEK_LEN), MR_SLICE(kv->key.data, kv->key.len),
                             MR_SLICE(kv->value.data, kv->value.len), &sealed[i]))) {
            orig[i] = kv->value;
            swapped[i] = true;
            kv->value.data = sealed[i].data;
            kv->value.len = sealed[i].len;
        }
        mr_error_clear();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    Etcdserverpb__WatchResponse *r = etcdserverpb__watch_response__unpack(NULL, size - 1, data + 1);
    if (r == NULL)
        return 0;
    r->compact_revision = 0;
    estore s;
    memset(&s, 0, sizeof(s));
    s.base.vt = &es_vtbl;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    mr_buf_init(&s.prefix, 0, 0);
    mr_buf_init(&s.end, 0, 0);
    s.key = (uint8_t *)(uintptr_t)key;
    static const char *const vol[] = {"activations:"};
    s.vol.v = (char **)(uintptr_t)vol;
    s.vol.n = 1;
    mr_buf sealed[64];
    ProtobufCBinaryData orig[64];
    bool swapped[64];
    memset(orig, 0, sizeof(orig));
    memset(swapped, 0, sizeof(swapped));
    size_t n_sealed = r->n_events < 64 ? r->n_events : 64;
    memset(sealed, 0, sizeof(sealed));
    if (mr_ok(mr_buf_append_str(&s.prefix, "/f/")) && mr_ok(mr_buf_nul_terminate(&s.prefix)) &&
        mr_ok(mr_store_open_memory(&s.cache))) {
        if (data[0] == 1)
            seal_all(&s, r, sealed, orig, swapped);
        es_on_watch(&s, r);
        mr_store_txn *ct = NULL;
        mr_store_list all = {0};
        if (mr_ok(mr_store_begin(s.cache, &ct)) && mr_ok(mr_store_scan(ct, "", &all))) {
            etxn *t = mr_calloc(1, sizeof(*t));
            if (t != NULL) {
                t->base.store = &s.base;
                t->s = &s;
                t->ct = ct;
                ct = NULL;
                for (size_t i = 0; i < all.count; i++) {
                    mr_buf v;
                    bool found = false;
                    mr_buf_init(&v, 0, 0);
                    (void)mr_store_get(&t->base, all.items[i].key, &v, &found);
                    mr_buf_free(&v);
                    mr_error_clear();
                }
                mr_store_list out = {0};
                (void)mr_store_scan(&t->base, "", &out);
                mr_store_list_free(&out);
                mr_error_clear();
                es_txn_free(t);
            }
        }
        mr_store_list_free(&all);
        mr_store_abort(ct);
    }
    mr_error_clear();
    for (size_t i = 0; i < n_sealed; i++) {
        if (swapped[i])
            r->events[i]->kv->value = orig[i];
        mr_buf_free(&sealed[i]);
    }
    mr_store_close(s.cache);
    mr_buf_free(&s.prefix);
    mr_buf_free(&s.end);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    etcdserverpb__watch_response__free_unpacked(r, NULL);
    return 0;
}
