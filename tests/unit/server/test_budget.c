/* SPDX-License-Identifier: Apache-2.0 */
/* Admission, eviction and the request-body budget of the network layer (budget.c). */
#include "mr_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/alloc.h"
#include "coordinator/server/internal.h"

typedef struct fixture {
    mr_srv *srv;
    mr_srv_listener *l;
} fixture;

static void open_server(fixture *f, const mr_srv_limits *lim)
{
    int id = -1;
    MR_ASSERT_OK(mr_srv_new(lim, 1, &f->srv));
    MR_ASSERT_OK(mr_srv_listen_virtual(f->srv, MR_SRV_LISTENER_CLIENT, &id));
    f->l = f->srv->lst[id];
}

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

/* Admits a connection from ip and creates it (no socket), or returns NULL when refused. */
static mr_srv_conn *connect_from(fixture *f, const char *ip, mr_srv_admit *why)
{
    struct sockaddr_in a = v4(ip);
    mr_srv_source *src = NULL;
    *why = mr_srv_admit_conn(f->srv, f->l, (const struct sockaddr *)&a, (int)sizeof(a), &src);
    if (*why != MR_SRV_ADMIT_OK)
        return NULL;
    mr_srv_conn *c = mr_srv_conn_new(f->srv, f->l, NULL);
    assert_non_null(c);
    c->src = src;
    return c;
}

static mr_srv_conn *must_connect(fixture *f, const char *ip)
{
    mr_srv_admit why;
    mr_srv_conn *c = connect_from(f, ip, &why);
    assert_int_equal(why, MR_SRV_ADMIT_OK);
    return c;
}

static bool on_list(mr_srv_conn *head, const mr_srv_conn *c)
{
    for (; head != NULL; head = head->idle_next)
        if (head == c)
            return true;
    return false;
}

static void test_per_source_limit(void **state)
{
    (void)state;
    fixture f;
    mr_srv_limits lim = {.max_conns_per_source = 2};
    open_server(&f, &lim);
    mr_srv_admit why;
    mr_srv_conn *a1 = must_connect(&f, "10.0.0.1");
    mr_srv_conn *a2 = must_connect(&f, "10.0.0.1");
    assert_null(connect_from(&f, "10.0.0.1", &why));
    assert_int_equal(why, MR_SRV_ADMIT_SOURCE_FULL);
    /* the same peer over IPv6 (v4-mapped) is the same source */
    struct sockaddr_in6 m;
    memset(&m, 0, sizeof(m));
    m.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:10.0.0.1", &m.sin6_addr), 1);
    mr_srv_source *src = NULL;
    assert_int_equal(mr_srv_admit_conn(f.srv, f.l, (const struct sockaddr *)&m, (int)sizeof(m), &src),
                     MR_SRV_ADMIT_SOURCE_FULL);
    mr_srv_conn *b = must_connect(&f, "10.0.0.2");
    assert_int_equal(f.l->nconns, 3);
    assert_int_equal(atomic_load(&f.l->refused_source), 2);
    /* a closed connection frees its place */
    mr_srv_conn_close(a1);
    mr_srv_conn *a3 = must_connect(&f, "10.0.0.1");
    mr_srv_conn_close(a2);
    mr_srv_conn_close(a3);
    mr_srv_conn_close(b);
    assert_int_equal(f.l->nconns, 0);
    assert_int_equal(f.srv->sources.count, 0); /* entries go with their last connection */
    mr_srv_free(f.srv);
}

static void test_eviction_order(void **state)
{
    (void)state;
    fixture f;
    mr_srv_limits lim = {.max_conns = 3};
    open_server(&f, &lim);
    mr_srv_conn *busy = must_connect(&f, "10.0.0.1");
    mr_srv_conn *idle = must_connect(&f, "10.0.0.2");
    mr_srv_conn *fresh = must_connect(&f, "10.0.0.3");
    mr_srv_idle_leave(busy);       /* a request in progress */
    mr_srv_conn_started(idle);     /* it spoke: now waiting for its peer */
    assert_true(on_list(f.l->fresh_head, fresh));
    assert_true(on_list(f.l->idle_head, idle));
    assert_false(on_list(f.l->fresh_head, busy) || on_list(f.l->idle_head, busy));
    /* full: the connection that never spoke goes first */
    mr_srv_conn *n1 = must_connect(&f, "10.0.0.4");
    assert_int_equal(atomic_load(&f.l->evicted), 1);
    assert_int_equal(f.l->nconns, 3);
    assert_true(f.l->fresh_head == n1 && n1->idle_next == NULL); /* n1 only: fresh is gone */
    assert_true(on_list(f.l->idle_head, idle));
    mr_srv_idle_leave(n1);
    /* then the waiting one */
    mr_srv_conn *n2 = must_connect(&f, "10.0.0.5");
    assert_int_equal(atomic_load(&f.l->evicted), 2);
    assert_null(f.l->idle_head);
    mr_srv_idle_leave(n2);
    /* all busy: refused */
    mr_srv_admit why;
    assert_null(connect_from(&f, "10.0.0.6", &why));
    assert_int_equal(why, MR_SRV_ADMIT_LISTENER_FULL);
    assert_int_equal(atomic_load(&f.l->refused_full), 1);
    mr_srv_conn_close(busy);
    mr_srv_conn_close(n1);
    mr_srv_conn_close(n2);
    mr_srv_free(f.srv);
}

static void test_eviction_prefers_heavy_source(void **state)
{
    (void)state;
    fixture f;
    mr_srv_limits lim = {.max_conns = 4};
    open_server(&f, &lim);
    mr_srv_conn *lone = must_connect(&f, "10.0.0.9"); /* the oldest */
    mr_srv_conn *h[3];
    for (int i = 0; i < 3; i++)
        h[i] = must_connect(&f, "10.0.0.1");
    mr_srv_conn *n = must_connect(&f, "10.0.0.7");
    /* the lone client's connection survives; the heavy source lost its oldest */
    assert_true(on_list(f.l->fresh_head, lone));
    assert_int_equal(lone->src->conns, 1);
    assert_int_equal(h[1]->src->conns, 2); /* (h[0]'s memory may now be n's) */
    assert_true(on_list(f.l->fresh_head, h[1]) && on_list(f.l->fresh_head, h[2]));
    assert_int_equal(f.l->nconns, 4);
    mr_srv_conn_close(lone);
    mr_srv_conn_close(h[1]);
    mr_srv_conn_close(h[2]);
    mr_srv_conn_close(n);
    assert_int_equal(f.l->nconns, 0);
    mr_srv_free(f.srv);
}

static void test_evicting_own_source(void **state)
{
    (void)state;
    fixture f;
    mr_srv_limits lim = {.max_conns = 1};
    open_server(&f, &lim);
    mr_srv_conn *a = must_connect(&f, "10.0.0.1");
    (void)a;
    /* the new connection of the same (only) source evicts the old one: the source stays */
    mr_srv_conn *b = must_connect(&f, "10.0.0.1");
    assert_int_equal(f.srv->sources.count, 1);
    assert_int_equal(b->src->conns, 1);
    mr_srv_conn_close(b);
    assert_int_equal(f.srv->sources.count, 0);
    mr_srv_free(f.srv);
}

static mr_srv_request *request_from(fixture *f, mr_srv_conn *c)
{
    mr_srv_request *r = mr_srv_request_new(f->srv, c);
    assert_non_null(r);
    mr_buf_init(&r->body, 8 << 20, 0);
    return r;
}

static void test_body_budget(void **state)
{
    (void)state;
    fixture f;
    mr_srv_limits lim = {.body_budget = 1 << 20, .max_small_body_bytes = 64 << 10};
    open_server(&f, &lim);
    mr_srv_conn *a = must_connect(&f, "10.0.0.1"), *b = must_connect(&f, "10.0.0.2");
    mr_srv_conn *c = must_connect(&f, "10.0.0.3"), *d = must_connect(&f, "10.0.0.4");
    mr_srv_request *r[6];
    r[0] = request_from(&f, a);
    assert_true(mr_srv_body_reserve(r[0], 200 << 10));
    assert_int_equal(r[0]->body.cap, 200 << 10); /* exactly what was announced */
    /* one source holds at most a quarter of the budget */
    r[1] = request_from(&f, a);
    assert_false(mr_srv_body_reserve(r[1], 100 << 10));
    assert_int_equal(r[1]->charged, 0);
    r[2] = request_from(&f, b);
    assert_true(mr_srv_body_reserve(r[2], 200 << 10));
    r[3] = request_from(&f, c);
    assert_true(mr_srv_body_reserve(r[3], 200 << 10));
    /* large bodies stop at three quarters ... */
    r[4] = request_from(&f, d);
    assert_false(mr_srv_body_reserve(r[4], 200 << 10));
    /* ... so small ones still fit */
    r[5] = request_from(&f, d);
    assert_true(mr_srv_body_reserve(r[5], 32 << 10));
    assert_int_equal(f.srv->body_used, (600 << 10) + (32 << 10));
    assert_int_equal(f.l->body_used, f.srv->body_used);
    assert_int_equal(atomic_load(&f.l->body_refused), 2);
    /* growth of an unannounced body is charged by capacity */
    uint8_t chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    MR_ASSERT_OK(mr_buf_append(&r[1]->body, chunk, sizeof(chunk)));
    assert_true(mr_srv_body_charge(r[1]));
    assert_int_equal(r[1]->charged, r[1]->body.cap);
    for (int i = 0; i < 6; i++)
        mr_srv_request_free(r[i]);
    assert_int_equal(f.l->body_used, 0);
    assert_int_equal(f.srv->body_used, 0);
    assert_int_equal(atomic_load(&f.l->body_now), 0);
    mr_srv_conn_close(a);
    mr_srv_conn_close(b);
    mr_srv_conn_close(c);
    mr_srv_conn_close(d);
    assert_int_equal(f.srv->sources.count, 0);
    mr_srv_free(f.srv);
}

static void test_request_outlives_connection(void **state)
{
    (void)state;
    fixture f;
    mr_srv_limits lim = {.body_budget = 1 << 20};
    open_server(&f, &lim);
    mr_srv_conn *a = must_connect(&f, "10.0.0.1");
    mr_srv_request *r = request_from(&f, a);
    assert_true(mr_srv_body_reserve(r, 1000));
    r->conn = NULL; /* a handler owns it; the client goes away */
    mr_srv_conn_close(a);
    assert_int_equal(f.srv->sources.count, 1); /* the charge keeps the source */
    mr_srv_request_free(r);
    assert_int_equal(f.srv->sources.count, 0);
    assert_int_equal(f.l->body_used, 0);
    mr_srv_free(f.srv);
}

static void test_many_sources(void **state)
{
    (void)state;
    fixture f;
    mr_srv_limits lim = {.max_conns = 5000};
    open_server(&f, &lim);
    enum { N = 3000 };
    mr_srv_conn **v = mr_calloc(N, sizeof(*v)); /* NOLINT(bugprone-sizeof-expression) */
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        v[i] = must_connect(&f, ip);
    }
    assert_int_equal(f.srv->sources.count, N);
    assert_true(f.srv->sources.nbuckets >= N); /* the table grew with its entries */
    for (int i = 0; i < N; i++)
        mr_srv_conn_close(v[i]);
    assert_int_equal(f.srv->sources.count, 0);
    mr_free(v);
    mr_srv_free(f.srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_source_limit),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_eviction_prefers_heavy_source),
        cmocka_unit_test(test_evicting_own_source),
        cmocka_unit_test(test_body_budget),
        cmocka_unit_test(test_request_outlives_connection),
        cmocka_unit_test(test_many_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
