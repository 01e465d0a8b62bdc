/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-k8s_state: what the kubernetes store does with answers of the Kubernetes API (outside
 * bytes: the API server, or anyone who can write the Secrets). First byte = mode:
 *   0  a Secret object (JSON) parsed as the state's head Secret, then written back as entries
 *   1  a Secret object parsed as a shard
 *   2  an EndpointSliceList parsed for the key-API peers
 *   3  the raw entry-list encoding; what decodes must encode and decode to the same list
 * Nothing may crash, leak or read out of bounds; malformed input fails with an error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/store/k8s_store_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
    return 0;
}

static void head(mr_slice in)
{
    mr_k8s_obj o = {0};
    ks_head h;
    if (mr_ok(mr_k8s_parse_object(MR_K8S_SECRET, in, &o)) && mr_ok(ks_head_parse(&o, &h))) {
        mr_k8s_entry *items = NULL;
        size_t n = 0;
        if (mr_ok(ks_head_entries(&h, &items, &n)))
            ks_entries_free(items, n);
        ks_head_free(&h);
    }
    mr_k8s_obj_free(&o);
}

static void shard(mr_slice in)
{
    mr_k8s_obj o = {0};
    ks_shard sh;
    if (mr_ok(mr_k8s_parse_object(MR_K8S_SECRET, in, &o)) && mr_ok(ks_shard_parse(&o, &sh))) {
        for (size_t i = 0; i < sh.ents.n; i++)
            (void)ks_list_find(&sh.ents, sh.ents.v[i].key);
        ks_shard_free(&sh);
    }
    mr_k8s_obj_free(&o);
}

static bool same(const ks_list *a, const ks_list *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const ks_ent *x = &a->v[i], *y = &b->v[i];
        if (strcmp(x->key, y->key) != 0 || x->gen != y->gen || x->del != y->del ||
            x->sealed.len != y->sealed.len ||
            (x->sealed.len > 0 && memcmp(x->sealed.data, y->sealed.data, x->sealed.len) != 0))
            return false;
    }
    return true;
}

static void list(mr_slice in)
{
    ks_list a, b;
    if (!mr_ok(ks_list_decode(in, &a)))
        return;
    mr_buf enc;
    mr_buf_init(&enc, 0, 0);
    if (!mr_ok(ks_list_encode(&a, &enc)) || !mr_ok(ks_list_decode(mr_buf_slice(&enc), &b)))
        abort();
    if (!same(&a, &b) || ks_list_bytes(&a) != enc.len)
        abort();
    ks_list_free(&b);
    ks_list_free(&a);
    mr_buf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mr_slice in = MR_SLICE(data + 1, size - 1);
    if (data[0] == 0) {
        head(in);
    } else if (data[0] == 1) {
        shard(in);
    } else if (data[0] == 2) {
        mr_buf peers;
        mr_buf_init(&peers, 0, 0);
        (void)mr_k8s_parse_peers(in, "grpc", &peers);
        mr_buf_free(&peers);
    } else {
        list(in);
    }
    mr_error_clear();
    return 0;
}
