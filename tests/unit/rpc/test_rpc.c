/* SPDX-License-Identifier: Apache-2.0 */
/* The gRPC client against a real etcd (Debian's etcd-server, started here): unary calls,
 * transactions with compares, a watch stream, deadlines and a dead endpoint. This is also the
 * check that proto/etcd.proto speaks etcd's wire format. */
#include "mr_test.h"

#include "coordinator/rpc/rpc.h"
#include "etcd_fixture.h"
#include "proto/etcd.pb-c.h"

static etcd_fixture g_etcd;

static int setup(void **state)
{
    (void)state;
    return etcd_start(&g_etcd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    etcd_stop(&g_etcd);
    return 0;
}

static mr_rpc_conn *dial(void)
{
    mr_rpc_target t = {.host = "127.0.0.1", .port = g_etcd.port};
    mr_rpc_conn *c = NULL;
    MR_ASSERT_OK(mr_rpc_connect(&t, mr_rpc_now_ms() + 5000, &c));
    return c;
}

static void put(mr_rpc_conn *c, const char *k, const char *v)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key = (ProtobufCBinaryData){strlen(k), (uint8_t *)(uintptr_t)k};
    req.value = (ProtobufCBinaryData){strlen(v), (uint8_t *)(uintptr_t)v};
    uint8_t buf[512];
    size_t n = etcdserverpb__put_request__pack(&req, buf);
    mr_buf resp;
    mr_buf_init(&resp, 0, 0);
    mr_grpc_code st = MR_GRPC_UNKNOWN;
    MR_ASSERT_OK(mr_rpc_call(c, "/etcdserverpb.KV/Put", MR_SLICE(buf, n), 1 << 20,
                             mr_rpc_now_ms() + 5000, &resp, &st));
    assert_int_equal(st, MR_GRPC_OK);
    Etcdserverpb__PutResponse *pr = etcdserverpb__put_response__unpack(NULL, resp.len, resp.data);
    assert_non_null(pr);
    assert_true(pr->header != NULL && pr->header->revision > 0);
    etcdserverpb__put_response__free_unpacked(pr, NULL);
    mr_buf_free(&resp);
}

static Etcdserverpb__RangeResponse *range(mr_rpc_conn *c, const char *k, const char *end)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = (ProtobufCBinaryData){strlen(k), (uint8_t *)(uintptr_t)k};
    if (end != NULL)
        req.range_end = (ProtobufCBinaryData){strlen(end), (uint8_t *)(uintptr_t)end};
    uint8_t buf[512];
    size_t n = etcdserverpb__range_request__pack(&req, buf);
    mr_buf resp;
    mr_buf_init(&resp, 0, 0);
    MR_ASSERT_OK(mr_rpc_call(c, "/etcdserverpb.KV/Range", MR_SLICE(buf, n), 1 << 20,
                             mr_rpc_now_ms() + 5000, &resp, NULL));
    Etcdserverpb__RangeResponse *rr = etcdserverpb__range_response__unpack(NULL, resp.len, resp.data);
    assert_non_null(rr);
    mr_buf_free(&resp);
    return rr;
}

static void test_unary(void **state)
{
    (void)state;
    mr_rpc_conn *c = dial();
    put(c, "/t/a", "1");
    put(c, "/t/b", "2");
    Etcdserverpb__RangeResponse *rr = range(c, "/t/", "/t0");
    assert_int_equal(rr->n_kvs, 2);
    assert_memory_equal(rr->kvs[0]->key.data, "/t/a", 4);
    assert_memory_equal(rr->kvs[1]->value.data, "2", 1);
    assert_true(rr->kvs[1]->mod_revision > rr->kvs[0]->mod_revision);
    etcdserverpb__range_response__free_unpacked(rr, NULL);
    /* an unknown method: the server's status comes back as the error */
    mr_buf resp;
    mr_buf_init(&resp, 0, 0);
    mr_grpc_code st = MR_GRPC_OK;
    MR_ASSERT_FAIL(mr_rpc_call(c, "/etcdserverpb.KV/Nope", MR_SLICE("", 0), 1024,
                               mr_rpc_now_ms() + 5000, &resp, &st),
                   MR_ERR_PROTOCOL, "rpc error: code = Unimplemented");
    assert_int_equal(st, MR_GRPC_UNIMPLEMENTED);
    assert_true(mr_rpc_usable(c)); /* a failed call does not break the connection */
    mr_buf_free(&resp);
    mr_rpc_close(c);
}

static bool txn(mr_rpc_conn *c, const char *key, int64_t mod_rev, const char *value)
{
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
    cmp.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)(uintptr_t)key};
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
    cmp.mod_revision = mod_rev;
    Etcdserverpb__Compare *cmps[] = {&cmp};
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = cmp.key;
    p.value = (ProtobufCBinaryData){strlen(value), (uint8_t *)(uintptr_t)value};
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    op.request_put = &p;
    Etcdserverpb__RequestOp *ops[] = {&op};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 1;
    t.compare = cmps;
    t.n_success = 1;
    t.success = ops;
    uint8_t buf[512];
    size_t n = etcdserverpb__txn_request__pack(&t, buf);
    mr_buf resp;
    mr_buf_init(&resp, 0, 0);
    MR_ASSERT_OK(mr_rpc_call(c, "/etcdserverpb.KV/Txn", MR_SLICE(buf, n), 1 << 20,
                             mr_rpc_now_ms() + 5000, &resp, NULL));
    Etcdserverpb__TxnResponse *tr = etcdserverpb__txn_response__unpack(NULL, resp.len, resp.data);
    assert_non_null(tr);
    bool ok = tr->succeeded;
    etcdserverpb__txn_response__free_unpacked(tr, NULL);
    mr_buf_free(&resp);
    return ok;
}

static void test_txn_compare(void **state)
{
    (void)state;
    mr_rpc_conn *c = dial();
    put(c, "/x/k", "v0");
    Etcdserverpb__RangeResponse *rr = range(c, "/x/k", NULL);
    int64_t rev = rr->kvs[0]->mod_revision;
    etcdserverpb__range_response__free_unpacked(rr, NULL);
    assert_true(txn(c, "/x/k", rev, "v1"));
    assert_false(txn(c, "/x/k", rev, "v2")); /* lost the race: the key moved on */
    rr = range(c, "/x/k", NULL);
    assert_memory_equal(rr->kvs[0]->value.data, "v1", 2);
    etcdserverpb__range_response__free_unpacked(rr, NULL);
    /* mod_revision 0 means "does not exist" */
    assert_true(txn(c, "/x/new", 0, "n"));
    assert_false(txn(c, "/x/new", 0, "again"));
    mr_rpc_close(c);
}

static void test_watch(void **state)
{
    (void)state;
    mr_rpc_conn *w = dial(), *c = dial();
    mr_rpc_stream *s = NULL;
    MR_ASSERT_OK(mr_rpc_stream_open(w, "/etcdserverpb.Watch/Watch", 1 << 20, &s));
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    cr.key = (ProtobufCBinaryData){3, (uint8_t *)"/w/"};
    cr.range_end = (ProtobufCBinaryData){3, (uint8_t *)"/w0"};
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    wr.create_request = &cr;
    uint8_t buf[256];
    size_t n = etcdserverpb__watch_request__pack(&wr, buf);
    MR_ASSERT_OK(mr_rpc_stream_send(s, MR_SLICE(buf, n), mr_rpc_now_ms() + 5000));
    mr_buf msg;
    mr_buf_init(&msg, 0, 0);
    bool got = false;
    MR_ASSERT_OK(mr_rpc_stream_recv(s, mr_rpc_now_ms() + 5000, &msg, &got, NULL));
    assert_true(got);
    Etcdserverpb__WatchResponse *r = etcdserverpb__watch_response__unpack(NULL, msg.len, msg.data);
    assert_true(r != NULL && r->created);
    etcdserverpb__watch_response__free_unpacked(r, NULL);
    /* nothing happens: the receive times out softly */
    mr_buf_reset(&msg);
    uint64_t t0 = mr_rpc_now_ms();
    MR_ASSERT_OK(mr_rpc_stream_recv(s, t0 + 200, &msg, &got, NULL));
    assert_false(got);
    assert_true(mr_rpc_now_ms() - t0 < 2000);
    /* a put elsewhere arrives as an event */
    put(c, "/w/one", "1");
    int events = 0;
    for (int i = 0; i < 20 && events == 0; i++) {
        mr_buf_reset(&msg);
        MR_ASSERT_OK(mr_rpc_stream_recv(s, mr_rpc_now_ms() + 5000, &msg, &got, NULL));
        if (!got)
            continue;
        r = etcdserverpb__watch_response__unpack(NULL, msg.len, msg.data);
        assert_non_null(r);
        for (size_t k = 0; k < r->n_events; k++) {
            assert_int_equal(r->events[k]->type, ETCDSERVERPB__EVENT__EVENT_TYPE__PUT);
            assert_memory_equal(r->events[k]->kv->key.data, "/w/one", 6);
            events++;
        }
        etcdserverpb__watch_response__free_unpacked(r, NULL);
    }
    assert_int_equal(events, 1);
    /* a progress request is answered with the current revision */
    Etcdserverpb__WatchProgressRequest pr = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
    wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    wr.progress_request = &pr;
    n = etcdserverpb__watch_request__pack(&wr, buf);
    MR_ASSERT_OK(mr_rpc_stream_send(s, MR_SLICE(buf, n), mr_rpc_now_ms() + 5000));
    mr_buf_reset(&msg);
    MR_ASSERT_OK(mr_rpc_stream_recv(s, mr_rpc_now_ms() + 5000, &msg, &got, NULL));
    assert_true(got);
    r = etcdserverpb__watch_response__unpack(NULL, msg.len, msg.data);
    assert_true(r != NULL && r->header != NULL && r->header->revision > 0 && r->n_events == 0);
    etcdserverpb__watch_response__free_unpacked(r, NULL);
    mr_buf_free(&msg);
    mr_rpc_stream_close(s);
    mr_rpc_close(w);
    mr_rpc_close(c);
}

static void test_unreachable_and_deadline(void **state)
{
    (void)state;
    char port[16];
    snprintf(port, sizeof(port), "%d", etcd_free_port());
    mr_rpc_target t = {.host = "127.0.0.1", .port = port};
    mr_rpc_conn *c = NULL;
    uint64_t t0 = mr_rpc_now_ms();
    MR_ASSERT_FAIL(mr_rpc_connect(&t, t0 + 2000, &c), MR_ERR_UNAVAILABLE, "cannot connect");
    assert_true(mr_rpc_now_ms() - t0 < 3000);
    t.host = "no-such-host.invalid";
    MR_ASSERT_FAIL(mr_rpc_connect(&t, t0 + 2000, &c), MR_ERR_UNAVAILABLE, "cannot resolve");
    /* a stopped server: the call fails within its deadline, the connection is then unusable */
    c = dial();
    etcd_freeze(g_etcd.pid);
    mr_buf resp;
    mr_buf_init(&resp, 0, 0);
    mr_grpc_code st = MR_GRPC_OK;
    t0 = mr_rpc_now_ms();
    MR_ASSERT_FAIL(mr_rpc_call(c, "/etcdserverpb.KV/Range", MR_SLICE("\x0a\x01x", 3), 1024,
                               t0 + 300, &resp, &st),
                   MR_ERR_UNAVAILABLE, "DeadlineExceeded");
    assert_int_equal(st, MR_GRPC_DEADLINE_EXCEEDED);
    assert_true(mr_rpc_now_ms() - t0 < 1500);
    kill(g_etcd.pid, SIGCONT);
    mr_buf_free(&resp);
    mr_rpc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_txn_compare),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_unreachable_and_deadline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
