/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the kubernetes store's wire formats: the entry list, the head and shard
 * Secrets, the Kubernetes API answers (objects, EndpointSlices), sealed values, and the
 * client's configuration errors. */
#include "mr_test.h"

#include <unistd.h>

#include "common/codec.h"
#include "common/log.h"
#include "coordinator/store/k8s_store_int.h"
#include "coordinator/store/sealed_value.h"

static const uint8_t key32[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void sample_list(ks_list *l)
{
    memset(l, 0, sizeof(*l));
    MR_ASSERT_OK(ks_list_add(l, "secret:b", 7, false, MR_SLICE_STR("sealed-b")));
    MR_ASSERT_OK(ks_list_add(l, "manifest", 3, false, MR_SLICE_STR("sealed-manifest")));
    MR_ASSERT_OK(ks_list_add(l, "secret:a", 9, true, MR_SLICE("", 0)));
    ks_list_sort(l);
}

static void test_list_round_trip(void **state)
{
    (void)state;
    ks_list l, back;
    mr_buf enc;
    mr_buf_init(&enc, 0, 0);
    sample_list(&l);
    MR_ASSERT_OK(ks_list_encode(&l, &enc));
    assert_int_equal(enc.len, ks_list_bytes(&l));
    MR_ASSERT_OK(ks_list_decode(mr_buf_slice(&enc), &back));
    assert_int_equal(back.n, 3);
    assert_string_equal(back.v[0].key, "manifest");
    const ks_ent *a = ks_list_find(&back, "secret:a");
    assert_non_null(a);
    assert_true(a->del);
    assert_int_equal(a->gen, 9);
    const ks_ent *b = ks_list_find(&back, "secret:b");
    assert_non_null(b);
    assert_memory_equal(b->sealed.data, "sealed-b", 8);
    assert_null(ks_list_find(&back, "secret:c"));
    ks_list_free(&back);

    /* one byte more, one byte less, a count that promises more: refused */
    MR_ASSERT_OK(mr_buf_append_u8(&enc, 0));
    MR_ASSERT_FAIL(ks_list_decode(mr_buf_slice(&enc), &back), MR_ERR_CORRUPT, "malformed entry list");
    MR_ASSERT_FAIL(ks_list_decode(MR_SLICE(enc.data, enc.len - 2), &back), MR_ERR_CORRUPT,
                   "malformed entry");
    enc.data[0] = 4;
    MR_ASSERT_FAIL(ks_list_decode(MR_SLICE(enc.data, enc.len - 1), &back), MR_ERR_CORRUPT,
                   "malformed entry");
    ks_list_free(&l);
    mr_buf_free(&enc);
}

static void test_list_refuses_duplicates_and_bad_keys(void **state)
{
    (void)state;
    ks_list l = {0}, back;
    mr_buf enc;
    mr_buf_init(&enc, 0, 0);
    MR_ASSERT_OK(ks_list_add(&l, "k", 1, false, MR_SLICE_STR("x")));
    MR_ASSERT_OK(ks_list_add(&l, "k", 2, false, MR_SLICE_STR("y")));
    MR_ASSERT_OK(ks_list_encode(&l, &enc));
    MR_ASSERT_FAIL(ks_list_decode(mr_buf_slice(&enc), &back), MR_ERR_CORRUPT, "duplicate entry");
    /* an empty key and a key with a NUL byte */
    static const uint8_t empty_key[] = {1, 0, 0, 0, 0, 0};
    MR_ASSERT_FAIL(ks_list_decode(MR_SLICE(empty_key, sizeof(empty_key)), &back), MR_ERR_CORRUPT,
                   "malformed entry");
    static const uint8_t nul_key[] = {1, 0, 0, 0, 2, 0, 'a', 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    MR_ASSERT_FAIL(ks_list_decode(MR_SLICE(nul_key, sizeof(nul_key)), &back), MR_ERR_CORRUPT,
                   "malformed entry");
    ks_list_free(&l);
    mr_buf_free(&enc);
}

/* A head object as the API would return it, built from a ks_head. */
static void head_object(const ks_head *h, mr_k8s_obj *o)
{
    memset(o, 0, sizeof(*o));
    MR_ASSERT_OK(ks_head_entries(h, &o->items, &o->count));
    o->found = true;
    memcpy(o->rv, "4711", 5);
}

static void test_head_round_trip(void **state)
{
    (void)state;
    ks_head h = {0}, back;
    mr_k8s_obj o;
    h.gen = 12;
    h.epoch = 30;
    h.n = 4;
    h.fg = mr_calloc(4, sizeof(uint64_t));
    assert_non_null(h.fg);
    h.fg[2] = 11;
    sample_list(&h.pending);
    head_object(&h, &o);
    assert_int_equal(o.count, 3);
    MR_ASSERT_OK(ks_head_parse(&o, &back));
    assert_int_equal(back.gen, 12);
    assert_int_equal(back.epoch, 30);
    assert_int_equal(back.n, 4);
    assert_int_equal(back.fg[2], 11);
    assert_int_equal(back.pending.n, 3);
    assert_string_equal(back.rv, "4711");
    ks_head_free(&back);

    /* another format, or a head with no shards, is not read */
    mr_buf_reset(&o.items[0].value);
    MR_ASSERT_OK(mr_buf_append_str(&o.items[0].value, "marblerun-c k8s v2"));
    MR_ASSERT_FAIL(ks_head_parse(&o, &back), MR_ERR_CORRUPT, "not in a known format");
    mr_buf_reset(&o.items[0].value);
    MR_ASSERT_OK(mr_buf_append_str(&o.items[0].value, KS_FORMAT));
    mr_buf_reset(&o.items[1].value);
    MR_ASSERT_OK(mr_buf_append(&o.items[1].value, (const uint8_t *)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20));
    MR_ASSERT_FAIL(ks_head_parse(&o, &back), MR_ERR_CORRUPT, "malformed head");
    mr_k8s_obj_free(&o);
    ks_head_free(&h);
}

static void test_shards(void **state)
{
    (void)state;
    char name[KS_NAME_MAX + 16];
    MR_ASSERT_OK(ks_shard_name("marblerun-state", 63, name));
    assert_string_equal(name, "marblerun-state-63");
    /* stable and spread: 4096 keys touch every one of 64 shards */
    unsigned hits[KS_SHARDS] = {0};
    for (int i = 0; i < 4096; i++) {
        char k[64];
        (void)snprintf(k, sizeof(k), "monotonicCounter:app:%d:c", i);
        uint32_t s = ks_shard_of(k, KS_SHARDS);
        assert_true(s < KS_SHARDS);
        assert_int_equal(s, ks_shard_of(k, KS_SHARDS));
        hits[s]++;
    }
    for (unsigned i = 0; i < KS_SHARDS; i++)
        assert_true(hits[i] > 20 && hits[i] < 120);

    /* an absent shard is empty; a present one without its entry is refused */
    mr_k8s_obj absent = {0};
    ks_shard sh;
    MR_ASSERT_OK(ks_shard_parse(&absent, &sh));
    assert_int_equal(sh.ents.n, 0);
    assert_string_equal(sh.rv, "");
    static const char bad[] = "{\"metadata\":{\"resourceVersion\":\"5\"},\"data\":{\"x\":\"AA==\"}}";
    mr_k8s_obj o = {0};
    MR_ASSERT_OK(mr_k8s_parse_object(MR_K8S_SECRET, MR_SLICE_STR(bad), &o));
    MR_ASSERT_FAIL(ks_shard_parse(&o, &sh), MR_ERR_CORRUPT, "malformed shard");
    mr_k8s_obj_free(&o);
}

static void test_parse_object(void **state)
{
    (void)state;
    mr_k8s_obj o = {0};
    static const char secret[] = "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\",\"resourceVersion\":\"99\"},"
                                 "\"data\":{\"a\":\"aGVsbG8=\",\"b\":\"\"}}";
    MR_ASSERT_OK(mr_k8s_parse_object(MR_K8S_SECRET, MR_SLICE_STR(secret), &o));
    assert_true(o.found);
    assert_string_equal(o.rv, "99");
    const mr_k8s_entry *a = mr_k8s_obj_entry(&o, "a");
    assert_non_null(a);
    assert_int_equal(a->value.len, 5);
    assert_memory_equal(a->value.data, "hello", 5);
    assert_non_null(mr_k8s_obj_entry(&o, "b"));
    assert_null(mr_k8s_obj_entry(&o, "c"));
    mr_k8s_obj_free(&o);

    static const char cm[] = "{\"metadata\":{\"resourceVersion\":\"7\"},\"data\":{\"t\":\"text\"},"
                             "\"binaryData\":{\"k\":\"AQI=\"}}";
    MR_ASSERT_OK(mr_k8s_parse_object(MR_K8S_CONFIGMAP, MR_SLICE_STR(cm), &o));
    assert_int_equal(o.count, 1); /* a ConfigMap's binaryData only */
    assert_int_equal(mr_k8s_obj_entry(&o, "k")->value.len, 2);
    mr_k8s_obj_free(&o);

    static const char *const bad[] = {
        "{\"metadata\":{},\"data\":{}}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"data\":[]}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"data\":{\"a\":1}}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"data\":{\"a\":\"***\"}}",
        "not json",
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_error_clear();
        assert_false(mr_ok(mr_k8s_parse_object(MR_K8S_SECRET, MR_SLICE_STR(bad[i]), &o)));
        mr_k8s_obj_free(&o);
        memset(&o, 0, sizeof(o));
    }
    mr_error_clear();
}

static void test_parse_peers(void **state)
{
    (void)state;
    static const char list[] =
        "{\"items\":["
        "{\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"metrics\",\"port\":9000},{\"name\":\"grpc\",\"port\":5433}],"
        " \"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true}},"
        "               {\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":false}},"
        "               {\"addresses\":[\"10.0.0.3,evil\"]},"
        "               {\"addresses\":[\"10.0.0.4\"]}]},"
        "{\"addressType\":\"IPv6\",\"ports\":[{\"name\":\"grpc\",\"port\":5433}],"
        " \"endpoints\":[{\"addresses\":[\"fd00::1\"]}]},"
        "{\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"other\",\"port\":1}],"
        " \"endpoints\":[{\"addresses\":[\"10.9.9.9\"]}]},"
        "{\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"grpc\",\"port\":70000}],"
        " \"endpoints\":[{\"addresses\":[\"10.8.8.8\"]}]}]}";
    mr_buf peers;
    mr_buf_init(&peers, 0, 0);
    MR_ASSERT_OK(mr_k8s_parse_peers(MR_SLICE_STR(list), "grpc", &peers));
    MR_ASSERT_OK(mr_buf_nul_terminate(&peers));
    assert_string_equal((const char *)peers.data, "10.0.0.1:5433,10.0.0.4:5433,[fd00::1]:5433");
    mr_buf_free(&peers);
    mr_buf_init(&peers, 0, 0);
    MR_ASSERT_FAIL(mr_k8s_parse_peers(MR_SLICE_STR("{"), "grpc", &peers), MR_ERR_PROTOCOL,
                   "malformed answer");
    mr_buf_free(&peers);
}

static void test_sealed_values(void **state)
{
    (void)state;
    mr_buf sealed, plain;
    mr_buf_init(&sealed, 0, 0);
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    mr_slice k = MR_SLICE(key32, sizeof(key32));
    MR_ASSERT_OK(mr_sv_seal(k, KS_TAG, MR_SLICE_STR("secret:a"), MR_SLICE_STR("value"), &sealed));
    assert_int_equal(sealed.len, 5 + MR_SV_OVERHEAD);
    MR_ASSERT_OK(mr_sv_open(k, KS_TAG, MR_SLICE_STR("secret:a"), mr_buf_slice(&sealed), &plain));
    assert_memory_equal(plain.data, "value", 5);
    /* under another key name, another tag, another key, or with a flipped bit: refused */
    MR_ASSERT_FAIL(mr_sv_open(k, KS_TAG, MR_SLICE_STR("secret:b"), mr_buf_slice(&sealed), &plain),
                   MR_ERR_CORRUPT, "value of secret:b does not open");
    MR_ASSERT_FAIL(mr_sv_open(k, "marblerun-c etcd v1", MR_SLICE_STR("secret:a"),
                              mr_buf_slice(&sealed), &plain), MR_ERR_CORRUPT, "does not open");
    uint8_t other[32];
    memcpy(other, key32, sizeof(other));
    other[0] ^= 1;
    MR_ASSERT_FAIL(mr_sv_open(MR_SLICE(other, sizeof(other)), KS_TAG, MR_SLICE_STR("secret:a"),
                              mr_buf_slice(&sealed), &plain), MR_ERR_CORRUPT, "does not open");
    for (size_t i = 0; i < sealed.len; i += 7) {
        sealed.data[i] ^= 0x40;
        MR_ASSERT_FAIL(mr_sv_open(k, KS_TAG, MR_SLICE_STR("secret:a"), mr_buf_slice(&sealed), &plain),
                       MR_ERR_CORRUPT, "does not open");
        sealed.data[i] ^= 0x40;
    }
    mr_buf_free(&sealed);
    mr_buf_free(&plain);
}

static void test_client_configuration_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/mr-k8s-sa-XXXXXX";
    assert_non_null(mkdtemp(dir));
    mr_k8s *k = NULL;
    mr_k8s_config cfg = {.host = "127.0.0.1", .port = "6443", .sa_dir = dir};
    mr_error_clear();
    assert_false(mr_ok(mr_k8s_open(&cfg, &k)));
    assert_null(k);
    assert_non_null(strstr(mr_error_get()->msg, dir));
    mr_error_clear();
    (void)rmdir(dir);
}

int main(void)
{
    mr_log_init(MR_LOG_ERROR, MR_LOG_CONSOLE);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_round_trip),
        cmocka_unit_test(test_list_refuses_duplicates_and_bad_keys),
        cmocka_unit_test(test_head_round_trip),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_parse_object),
        cmocka_unit_test(test_parse_peers),
        cmocka_unit_test(test_sealed_values),
        cmocka_unit_test(test_client_configuration_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
