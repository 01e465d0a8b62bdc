/* SPDX-License-Identifier: Apache-2.0 */
/* The etcd client against a real three-member cluster on loopback: endpoint parsing, paging,
 * transactions, the watch across a member's death, fail-over, and a lost quorum answered
 * within the deadline. */
#include "mr_test.h"

#include <stdatomic.h>

#include "coordinator/rpc/rpc.h"
#include "coordinator/store/etcd_client.h"
#include "etcd_fixture.h"

static etcd_cluster g_cl;

static int setup(void **state)
{
    (void)state;
    return etcd_cluster_start(&g_cl) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    etcd_cluster_stop(&g_cl);
    return 0;
}

static mr_etcd *open_client(unsigned timeout_ms)
{
    mr_etcd_config cfg = {.endpoints = g_cl.endpoints, .timeout_ms = timeout_ms, .pool_size = 4};
    mr_etcd *e = NULL;
    MR_ASSERT_OK(mr_etcd_open(&cfg, &e));
    return e;
}

static void test_endpoints(void **state)
{
    (void)state;
    mr_etcd *e = NULL;
    const char *bad[][2] = {
        {"", "no endpoint"},
        {"127.0.0.1:2379", "not an http:// or https:// URL"},
        {"http://127.0.0.1", "the port is missing"},
        {"http://127.0.0.1:x", "bad port"},
        {"http://a:1,https://b:2", "mixes http:// and https://"},
        {"http://[::1", "bad address"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_etcd_config cfg = {.endpoints = bad[i][0]};
        MR_ASSERT_FAIL(mr_etcd_open(&cfg, &e), MR_ERR_USAGE, bad[i][1]);
    }
    mr_etcd_config ok = {.endpoints = " http://a:1 , http://[::1]:2,http://b:3/ "};
    MR_ASSERT_OK(mr_etcd_open(&ok, &e));
    mr_etcd_close(e);
    mr_etcd_config tls = {.endpoints = "https://a:1", .cert_file = "/nonexistent"};
    MR_ASSERT_FAIL(mr_etcd_open(&tls, &e), MR_ERR_USAGE, "go together");
    mr_etcd_close(NULL);
}

static bool put(mr_etcd *e, const char *k, const char *v)
{
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = (ProtobufCBinaryData){strlen(k), (uint8_t *)(uintptr_t)k};
    p.value = (ProtobufCBinaryData){strlen(v), (uint8_t *)(uintptr_t)v};
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    op.request_put = &p;
    Etcdserverpb__RequestOp *ops[] = {&op};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_success = 1;
    t.success = ops;
    bool ok = false;
    int64_t rev = 0;
    if (!mr_ok(mr_etcd_txn(e, &t, &ok, &rev))) {
        print_message("put %s: %s\n", k, mr_error_get()->msg);
        return false;
    }
    return ok && rev > 0;
}

static mr_result count_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    (void)kv;
    (*(int *)arg)++;
    return MR_SUCCESS;
}

static void test_paging(void **state)
{
    (void)state;
    mr_etcd *e = open_client(5000);
    char k[32];
    for (int i = 0; i < 2100; i++) {
        snprintf(k, sizeof(k), "/p/%05d", i);
        assert_true(put(e, k, "x"));
    }
    mr_buf end;
    mr_buf_init(&end, 0, 0);
    MR_ASSERT_OK(mr_etcd_prefix_end(MR_SLICE_STR("/p/"), &end));
    assert_memory_equal(end.data, "/p0", 3);
    int n = 0;
    int64_t rev = 0;
    MR_ASSERT_OK(mr_etcd_range(e, MR_SLICE_STR("/p/"), mr_buf_slice(&end), 0, count_kv, &n, &rev));
    assert_int_equal(n, 2100); /* three pages, one snapshot */
    assert_true(rev > 2100);
    MR_ASSERT_OK(mr_etcd_prefix_end(MR_SLICE("\x01\xff\xff", 3), &end));
    assert_int_equal(end.len, 1);
    assert_int_equal(end.data[0], 2);
    mr_buf_free(&end);
    mr_etcd_close(e);
}

typedef struct seen {
    atomic_int events;
    atomic_int created;
} seen;

static void on_watch(void *arg, const Etcdserverpb__WatchResponse *r)
{
    seen *s = arg;
    if (r->created)
        atomic_fetch_add(&s->created, 1);
    atomic_fetch_add(&s->events, (int)r->n_events);
}

static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 200 && atomic_load(v) < want; i++)
        usleep(50 * 1000);
}

/* A restarted member serves linearizable reads again: it has rejoined the cluster. */
static void wait_member_ready(int i)
{
    mr_rpc_target t = {.host = "127.0.0.1", .port = g_cl.m[i].port};
    for (int k = 0; k < 100; k++) {
        mr_rpc_conn *c = NULL;
        mr_buf resp;
        mr_buf_init(&resp, 0, 0);
        bool ok = mr_ok(mr_rpc_connect(&t, mr_rpc_now_ms() + 1000, &c)) &&
                  mr_ok(mr_rpc_call(c, "/etcdserverpb.KV/Range", MR_SLICE("\x0a\x01x", 3), 1 << 20,
                                    mr_rpc_now_ms() + 1000, &resp, NULL));
        mr_buf_free(&resp);
        mr_rpc_close(c);
        mr_error_clear();
        if (ok)
            return;
        usleep(100 * 1000);
    }
    fail_msg("etcd member %d did not rejoin", i);
}

static void test_watch_and_failover(void **state)
{
    (void)state;
    seen s = {0};
    mr_etcd *w = open_client(3000), *e = open_client(3000);
    mr_buf end;
    mr_buf_init(&end, 0, 0);
    MR_ASSERT_OK(mr_etcd_prefix_end(MR_SLICE_STR("/w/"), &end));
    MR_ASSERT_OK(mr_etcd_watch(w, MR_SLICE_STR("/w/"), mr_buf_slice(&end), 0, on_watch, &s));
    wait_for(&s.created, 1);
    assert_true(mr_etcd_watch_live(w));
    assert_true(put(e, "/w/1", "a"));
    wait_for(&s.events, 1);
    assert_int_equal(atomic_load(&s.events), 1);
    /* a member dies (the leader among them): calls fail over, the watch re-creates itself on
     * another member and misses nothing. A transaction in flight while the leader goes may
     * fail with an unknown outcome (it is not retried); the next one goes through. */
    int attempt = 0;
    for (int victim = 0; victim < 3; victim++) {
        etcd_member_kill(&g_cl, victim);
        int ok = 0;
        for (int tries = 0; ok < 5 && tries < 40; tries++) {
            char k[24];
            snprintf(k, sizeof(k), "/w/%02d", attempt++);
            if (put(e, k, "b"))
                ok++;
            else
                usleep(100 * 1000);
        }
        assert_int_equal(ok, 5);
        etcd_member_restart(&g_cl, victim);
        wait_member_ready(victim);
    }
    /* every key etcd holds under /w/ arrived as exactly one event */
    int stored = 0;
    MR_ASSERT_OK(mr_etcd_range(e, MR_SLICE_STR("/w/"), mr_buf_slice(&end), 0, count_kv, &stored, NULL));
    assert_true(stored >= 16);
    wait_for(&s.events, stored);
    usleep(300 * 1000);
    assert_int_equal(atomic_load(&s.events), stored);
    mr_buf_free(&end);
    mr_etcd_close(w);
    mr_etcd_close(e);
}

static void test_lost_quorum(void **state)
{
    (void)state;
    mr_etcd *e = open_client(2000);
    assert_true(put(e, "/q/a", "1"));
    etcd_member_kill(&g_cl, 0);
    etcd_member_kill(&g_cl, 1);
    uint64_t t0 = mr_rpc_now_ms();
    int n = 0;
    /* a linearizable read needs a quorum: a clear error, within the deadline */
    MR_ASSERT_FAIL(mr_etcd_range(e, MR_SLICE_STR("/q/a"), MR_SLICE("", 0), 0, count_kv, &n, NULL),
                   MR_ERR_UNAVAILABLE, "etcd unavailable");
    assert_true(mr_rpc_now_ms() - t0 < 4000);
    assert_false(put(e, "/q/b", "2"));
    assert_true(mr_rpc_now_ms() - t0 < 8000);
    etcd_member_restart(&g_cl, 0);
    etcd_member_restart(&g_cl, 1);
    wait_member_ready(0);
    wait_member_ready(1);
    /* it recovers by itself */
    bool ok = false;
    for (int i = 0; i < 40 && !ok; i++) {
        ok = put(e, "/q/c", "3");
        if (!ok) {
            mr_error_clear();
            usleep(250 * 1000);
        }
    }
    assert_true(ok);
    mr_etcd_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_watch_and_failover),
        cmocka_unit_test(test_lost_quorum),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
