/* SPDX-License-Identifier: Apache-2.0 */
/* The etcd store backend against a real etcd: creation races, two instances on one prefix
 * (reads see every acknowledged commit), optimistic conflicts for reads, listings and
 * deletions, concurrent counters without lost updates, sealing (no plaintext in etcd, a value
 * copied to another key refused), the volatile prefixes of mr_store_sync, and an unreachable
 * etcd. */
#include "mr_test.h"

#include <pthread.h>
#include <stdatomic.h>

#include "coordinator/rpc/rpc.h"
#include "coordinator/store/etcd_store.h"
#include "etcd_fixture.h"

static etcd_fixture g_etcd;
static char g_endpoint[64];
static uint8_t g_key[MR_STORE_DEK_LEN];
static int g_prefix_no;

static int setup(void **state)
{
    (void)state;
    if (etcd_start(&g_etcd) != 0)
        return -1;
    snprintf(g_endpoint, sizeof(g_endpoint), "http://127.0.0.1:%s", g_etcd.port);
    for (size_t i = 0; i < sizeof(g_key); i++)
        g_key[i] = (uint8_t)(i * 7 + 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    etcd_stop(&g_etcd);
    return 0;
}

static mr_etcd *client(void)
{
    mr_etcd_config cfg = {.endpoints = g_endpoint, .timeout_ms = 2000};
    mr_etcd *e = NULL;
    MR_ASSERT_OK(mr_etcd_open(&cfg, &e));
    return e;
}

/* A fresh prefix with state created in it (one key "seed"). */
static void new_prefix(char *prefix, size_t n)
{
    snprintf(prefix, n, "/t%d/", ++g_prefix_no);
    mr_store *init = NULL;
    MR_ASSERT_OK(mr_store_open_memory(&init));
    MR_ASSERT_OK(mr_store_put1(init, "seed", (const uint8_t *)"s", 1));
    mr_etcd *e = client();
    bool created = false;
    MR_ASSERT_OK(mr_etcd_store_create(e, prefix, MR_SLICE(g_key, sizeof(g_key)), init, &created));
    assert_true(created);
    mr_etcd_close(e);
    mr_store_close(init);
}

static mr_store *open_store(const char *prefix)
{
    static const char *const vol[] = {"counter:"};
    mr_etcd_store_options o = {.prefix = prefix, .volatile_prefixes = vol, .n_volatile = 1,
                               .sync_timeout_ms = 2000};
    mr_store *s = NULL;
    MR_ASSERT_OK(mr_store_open_etcd(client(), MR_SLICE(g_key, sizeof(g_key)), &o, &s));
    return s;
}

static void get_str(mr_store *s, const char *key, const char *want)
{
    mr_buf v;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    bool found = false;
    MR_ASSERT_OK(mr_store_get1(s, key, &v, &found));
    if (want == NULL) {
        assert_false(found);
    } else {
        assert_true(found);
        assert_int_equal(v.len, strlen(want));
        assert_memory_equal(v.data, want, v.len);
    }
    mr_buf_free(&v);
}

static void test_create_race_and_keycheck(void **state)
{
    (void)state;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "/race%d/", ++g_prefix_no);
    mr_etcd *e = client();
    bool has = true;
    MR_ASSERT_OK(mr_etcd_store_probe(e, prefix, &has));
    assert_false(has);
    mr_store *init = NULL;
    MR_ASSERT_OK(mr_store_open_memory(&init));
    bool a = false, b = false;
    MR_ASSERT_OK(mr_etcd_store_create(e, prefix, MR_SLICE(g_key, sizeof(g_key)), init, &a));
    uint8_t other[MR_STORE_DEK_LEN] = {9};
    MR_ASSERT_OK(mr_etcd_store_create(e, prefix, MR_SLICE(other, sizeof(other)), init, &b));
    assert_true(a);
    assert_false(b); /* the second creator lost: nothing of it was written */
    MR_ASSERT_OK(mr_etcd_store_probe(e, prefix, &has));
    assert_true(has);
    bool ok = false;
    MR_ASSERT_OK(mr_etcd_store_check_key(e, prefix, MR_SLICE(g_key, sizeof(g_key)), &ok));
    assert_true(ok);
    MR_ASSERT_OK(mr_etcd_store_check_key(e, prefix, MR_SLICE(other, sizeof(other)), &ok));
    assert_false(ok);
    MR_ASSERT_FAIL(mr_etcd_store_check_key(e, "/nothing/", MR_SLICE(g_key, sizeof(g_key)), &ok),
                   MR_ERR_NOT_FOUND, "holds no state");
    mr_store_close(init);
    mr_etcd_close(e);
}

static void test_two_instances(void **state)
{
    (void)state;
    char prefix[32];
    new_prefix(prefix, sizeof(prefix));
    mr_store *a = open_store(prefix), *b = open_store(prefix);
    get_str(a, "seed", "s");
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        MR_ASSERT_OK(mr_store_put1(i % 2 ? a : b, "k", (const uint8_t *)v, strlen(v)));
        /* acknowledged on one instance: the other reads it at once */
        get_str(i % 2 ? b : a, "k", v);
    }
    /* a delete too */
    mr_store_txn *t = NULL;
    MR_ASSERT_OK(mr_store_begin(a, &t));
    MR_ASSERT_OK(mr_store_delete(t, "k"));
    MR_ASSERT_OK(mr_store_commit(t));
    get_str(b, "k", NULL);
    mr_store_close(a);
    mr_store_close(b);
}

static void test_conflicts(void **state)
{
    (void)state;
    char prefix[32];
    new_prefix(prefix, sizeof(prefix));
    mr_store *a = open_store(prefix), *b = open_store(prefix);
    MR_ASSERT_OK(mr_store_put1(a, "x", (const uint8_t *)"1", 1));
    MR_ASSERT_OK(mr_store_put1(a, "p/1", (const uint8_t *)"1", 1));
    /* read-modify-write against a concurrent writer of the same key */
    mr_store_txn *ta = NULL, *tb = NULL;
    mr_buf v;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    bool found = false;
    MR_ASSERT_OK(mr_store_begin(a, &ta));
    MR_ASSERT_OK(mr_store_get(ta, "x", &v, &found));
    MR_ASSERT_OK(mr_store_put1(b, "x", (const uint8_t *)"2", 1));
    MR_ASSERT_OK(mr_store_put(ta, "x", (const uint8_t *)"3", 1));
    MR_ASSERT_FAIL(mr_store_commit(ta), MR_ERR_CONFLICT, "store conflict");
    get_str(b, "x", "2");
    /* a listing, then a key created under the prefix elsewhere */
    mr_store_list l = {0};
    MR_ASSERT_OK(mr_store_begin(a, &ta));
    MR_ASSERT_OK(mr_store_scan(ta, "p/", &l));
    assert_int_equal(l.count, 1);
    mr_store_list_free(&l);
    MR_ASSERT_OK(mr_store_put1(b, "p/2", (const uint8_t *)"2", 1));
    MR_ASSERT_OK(mr_store_put(ta, "elsewhere", (const uint8_t *)"e", 1));
    MR_ASSERT_FAIL(mr_store_commit(ta), MR_ERR_CONFLICT, "store conflict");
    /* a listing, then a listed key deleted elsewhere */
    MR_ASSERT_OK(mr_store_begin(a, &ta));
    MR_ASSERT_OK(mr_store_scan(ta, "p/", &l));
    assert_int_equal(l.count, 2);
    mr_store_list_free(&l);
    MR_ASSERT_OK(mr_store_begin(b, &tb));
    MR_ASSERT_OK(mr_store_delete(tb, "p/1"));
    MR_ASSERT_OK(mr_store_commit(tb));
    MR_ASSERT_OK(mr_store_put(ta, "elsewhere", (const uint8_t *)"e", 1));
    MR_ASSERT_FAIL(mr_store_commit(ta), MR_ERR_CONFLICT, "store conflict");
    get_str(a, "elsewhere", NULL); /* nothing of the failed commits landed */
    /* own writes are read back inside the transaction and listed */
    MR_ASSERT_OK(mr_store_begin(a, &ta));
    MR_ASSERT_OK(mr_store_put(ta, "p/3", (const uint8_t *)"three", 5));
    mr_buf_reset(&v);
    MR_ASSERT_OK(mr_store_get(ta, "p/3", &v, &found));
    assert_true(found && v.len == 5);
    MR_ASSERT_OK(mr_store_scan(ta, "p/", &l));
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[1].key, "p/3");
    assert_memory_equal(l.items[1].value.ptr, "three", 5);
    mr_store_list_free(&l);
    MR_ASSERT_OK(mr_store_commit(ta));
    get_str(b, "p/3", "three");
    /* keys of our own are refused */
    MR_ASSERT_OK(mr_store_begin(a, &ta));
    MR_ASSERT_FAIL(mr_store_put(ta, "\x01rev", (const uint8_t *)"x", 1), MR_ERR_USAGE, "0x01");
    mr_store_abort(ta);
    mr_buf_free(&v);
    mr_store_close(a);
    mr_store_close(b);
}

typedef struct counter_job {
    mr_store *s;
    int n;
    atomic_int *conflicts;
} counter_job;

static void *bump(void *arg)
{
    counter_job *j = arg;
    for (int i = 0; i < j->n; i++) {
        for (;;) {
            mr_store_txn *t = NULL;
            mr_buf v;
            mr_buf_init(&v, 0, MR_BUF_SECRET);
            bool found = false;
            if (!mr_ok(mr_store_begin(j->s, &t)))
                abort();
            if (!mr_ok(mr_store_get(t, "counter:c", &v, &found)))
                abort();
            char num[24] = "";
            if (found && v.len < sizeof(num))
                memcpy(num, v.data, v.len);
            unsigned long x = strtoul(num, NULL, 10);
            char out[24];
            snprintf(out, sizeof(out), "%lu", x + 1);
            mr_buf_free(&v);
            if (!mr_ok(mr_store_put(t, "counter:c", (const uint8_t *)out, strlen(out))))
                abort();
            if (mr_ok(mr_store_commit(t)))
                break;
            if (!mr_error_is(MR_ERR_CONFLICT))
                abort();
            atomic_fetch_add(j->conflicts, 1);
        }
    }
    return NULL;
}

static void test_concurrent_counter(void **state)
{
    (void)state;
    char prefix[32];
    new_prefix(prefix, sizeof(prefix));
    mr_store *s[2] = {open_store(prefix), open_store(prefix)};
    uint64_t rev0 = 0, rev1 = 0;
    MR_ASSERT_OK(mr_store_sync(s[0], &rev0));
    atomic_int conflicts = 0;
    pthread_t th[6];
    counter_job jobs[6];
    for (int i = 0; i < 6; i++) {
        jobs[i] = (counter_job){.s = s[i % 2], .n = 25, .conflicts = &conflicts};
        assert_int_equal(pthread_create(&th[i], NULL, bump, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    /* no update lost, whatever the instance; the races were real */
    get_str(s[0], "counter:c", "150");
    get_str(s[1], "counter:c", "150");
    assert_true(atomic_load(&conflicts) > 0);
    /* counters are volatile: the state revision did not move */
    MR_ASSERT_OK(mr_store_sync(s[1], &rev1));
    assert_int_equal(rev0, rev1);
    MR_ASSERT_OK(mr_store_put1(s[0], "manifest", (const uint8_t *)"m", 1));
    MR_ASSERT_OK(mr_store_sync(s[1], &rev1));
    assert_true(rev1 > rev0);
    mr_store_close(s[0]);
    mr_store_close(s[1]);
}

static mr_result grab(void *arg, const Etcdserverpb__KeyValue *kv)
{
    mr_buf *b = arg;
    return mr_buf_set(b, kv->value.data, kv->value.len);
}

static bool contains(const mr_buf *b, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; b->len >= k && i <= b->len - k; i++)
        if (memcmp(b->data + i, needle, k) == 0)
            return true;
    return false;
}

static void test_sealing(void **state)
{
    (void)state;
    char prefix[32], ka[64], kb[64];
    new_prefix(prefix, sizeof(prefix));
    mr_store *s = open_store(prefix);
    MR_ASSERT_OK(mr_store_put1(s, "secret:a", (const uint8_t *)"TOP-SECRET-VALUE", 16));
    MR_ASSERT_OK(mr_store_put1(s, "secret:b", (const uint8_t *)"other", 5));
    /* what etcd holds is sealed */
    mr_etcd *e = client();
    mr_buf raw;
    mr_buf_init(&raw, 0, 0);
    snprintf(ka, sizeof(ka), "%ssecret:a", prefix);
    snprintf(kb, sizeof(kb), "%ssecret:b", prefix);
    MR_ASSERT_OK(mr_etcd_range(e, MR_SLICE_STR(ka), MR_SLICE("", 0), 0, grab, &raw, NULL));
    assert_int_equal(raw.len, 12 + 16 + 16);
    assert_false(contains(&raw, "TOP-SECRET"));
    /* the sealed value of a, put under key b, does not open there */
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = (ProtobufCBinaryData){strlen(kb), (uint8_t *)kb};
    p.value = (ProtobufCBinaryData){raw.len, raw.data};
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    op.request_put = &p;
    Etcdserverpb__RequestOp *ops[] = {&op};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_success = 1;
    t.success = ops;
    bool ok = false;
    int64_t rev = 0;
    MR_ASSERT_OK(mr_etcd_txn(e, &t, &ok, &rev));
    /* (the raw put did not bump the commit marker: wait for the watch directly) */
    mr_buf v;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    bool found = false;
    mr_result r = MR_SUCCESS;
    for (int i = 0; i < 50 && mr_ok(r); i++) {
        mr_buf_reset(&v);
        r = mr_store_get1(s, "secret:b", &v, &found);
        if (mr_ok(r))
            usleep(20 * 1000);
    }
    assert_false(mr_ok(r));
    assert_true(mr_error_is(MR_ERR_CORRUPT));
    assert_non_null(strstr(mr_error_get()->msg, "sealed state is corrupted"));
    get_str(s, "secret:a", "TOP-SECRET-VALUE");
    mr_buf_free(&v);
    mr_buf_free(&raw);
    mr_etcd_close(e);
    mr_store_close(s);
}

static void test_many_reads(void **state)
{
    (void)state;
    char prefix[32];
    new_prefix(prefix, sizeof(prefix));
    mr_store *a = open_store(prefix), *b = open_store(prefix);
    mr_store_txn *t = NULL;
    MR_ASSERT_OK(mr_store_begin(a, &t));
    char k[16];
    for (int i = 0; i < 150; i++) {
        snprintf(k, sizeof(k), "m/%03d", i);
        MR_ASSERT_OK(mr_store_put(t, k, (const uint8_t *)"v", 1));
    }
    MR_ASSERT_OK(mr_store_commit(t));
    /* a transaction that read more keys than fit in compares: any other commit conflicts */
    for (int round = 0; round < 2; round++) {
        mr_store_list l = {0};
        MR_ASSERT_OK(mr_store_begin(a, &t));
        MR_ASSERT_OK(mr_store_scan(t, "m/", &l));
        assert_int_equal(l.count, 150);
        mr_store_list_free(&l);
        if (round == 1)
            MR_ASSERT_OK(mr_store_put1(b, "unrelated", (const uint8_t *)"u", 1));
        MR_ASSERT_OK(mr_store_put(t, "total", (const uint8_t *)"150", 3));
        if (round == 0)
            MR_ASSERT_OK(mr_store_commit(t));
        else
            MR_ASSERT_FAIL(mr_store_commit(t), MR_ERR_CONFLICT, "store conflict");
    }
    mr_store_close(a);
    mr_store_close(b);
}

/* LATEST transactions read the replica without a round trip; their commit (also a read-only
 * one) validates what they read. */
static void test_latest(void **state)
{
    (void)state;
    char prefix[32];
    new_prefix(prefix, sizeof(prefix));
    mr_store *a = open_store(prefix), *b = open_store(prefix);
    MR_ASSERT_OK(mr_store_put1(a, "k", (const uint8_t *)"1", 1));
    get_str(b, "k", "1"); /* b's replica has it */
    mr_store_txn *t = NULL;
    mr_buf v;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    bool found = false;
    /* read-only: a change of what it read after its snapshot fails its commit */
    MR_ASSERT_OK(mr_store_begin_ex(b, MR_STORE_TXN_LATEST, &t));
    MR_ASSERT_OK(mr_store_get(t, "k", &v, &found));
    assert_true(found);
    MR_ASSERT_OK(mr_store_put1(a, "k", (const uint8_t *)"2", 1));
    MR_ASSERT_FAIL(mr_store_commit(t), MR_ERR_CONFLICT, "store conflict");
    /* read-only and nothing changed: it commits */
    get_str(b, "k", "2");
    MR_ASSERT_OK(mr_store_begin_ex(b, MR_STORE_TXN_LATEST, &t));
    mr_buf_reset(&v);
    MR_ASSERT_OK(mr_store_get(t, "k", &v, &found));
    MR_ASSERT_OK(mr_store_commit(t));
    /* read-modify-write: retried until it builds on the newest value */
    for (int i = 0; i < 3; i++) {
        for (int attempt = 0;; attempt++) {
            assert_true(attempt < 100);
            MR_ASSERT_OK(mr_store_begin_ex(b, MR_STORE_TXN_LATEST, &t));
            mr_buf_reset(&v);
            MR_ASSERT_OK(mr_store_get(t, "n", &v, &found));
            uint8_t next = (uint8_t)(found ? v.data[0] + 1 : 1);
            if (i == 1 && attempt == 0) /* another writer in between */
                MR_ASSERT_OK(mr_store_put1(a, "n", (const uint8_t *)"\x10", 1));
            MR_ASSERT_OK(mr_store_put(t, "n", &next, 1));
            if (mr_ok(mr_store_commit(t)))
                break;
            assert_true(mr_error_is(MR_ERR_CONFLICT));
            mr_error_clear();
        }
    }
    mr_buf_reset(&v);
    MR_ASSERT_OK(mr_store_get1(a, "n", &v, &found));
    assert_true(found && v.len == 1 && v.data[0] == 0x12); /* 1, then 0x10 + 1, then + 1 */
    mr_buf_free(&v);
    mr_store_close(a);
    mr_store_close(b);
}

static void test_unreachable(void **state)
{
    (void)state;
    char prefix[32];
    new_prefix(prefix, sizeof(prefix));
    mr_store *s = open_store(prefix);
    etcd_freeze(g_etcd.pid);
    mr_store_txn *t = NULL;
    uint64_t t0 = mr_rpc_now_ms();
    MR_ASSERT_FAIL(mr_store_begin(s, &t), MR_ERR_UNAVAILABLE, "etcd unavailable");
    uint64_t rev = 0;
    MR_ASSERT_FAIL(mr_store_sync(s, &rev), MR_ERR_UNAVAILABLE, "etcd unavailable");
    assert_true(mr_rpc_now_ms() - t0 < 6000);
    kill(g_etcd.pid, SIGCONT);
    get_str(s, "seed", "s"); /* and it serves again by itself */
    mr_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_race_and_keycheck),
        cmocka_unit_test(test_two_instances),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_latest),
        cmocka_unit_test(test_concurrent_counter),
        cmocka_unit_test(test_sealing),
        cmocka_unit_test(test_many_reads),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
