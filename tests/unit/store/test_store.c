/* SPDX-License-Identifier: Apache-2.0 */
/* Store engine (memory backend) and embedded backend: semantics, durability, tampering. */
#include "mr_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "store_test_util.h"

static const mr_store_options no_compact = {.compact_bytes = UINT64_MAX,
                                            .compact_records = UINT64_MAX};

static void get_str(mr_store_txn *t, const char *key, const char *want)
{
    mr_buf v;
    bool found = false;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_store_get(t, key, &v, &found));
    if (want == NULL) {
        assert_false(found);
    } else {
        assert_true(found);
        assert_int_equal(v.len, strlen(want));
        assert_memory_equal(v.data, want, v.len);
    }
    mr_buf_free(&v);
}

static void get1_str(mr_store *s, const char *key, const char *want)
{
    mr_store_txn *t = NULL;
    MR_ASSERT_OK(mr_store_begin(s, &t));
    get_str(t, key, want);
    mr_store_abort(t);
}

static void open_emb(const char *dir, const mr_store_options *o, mr_store **s)
{
    MR_ASSERT_OK(mr_store_open_embedded(dir, st_dek, sizeof(st_dek), o, s));
}

/* ---- engine semantics (memory backend) ---- */

static void test_basic_ops(void **state)
{
    (void)state;
    mr_store *s = NULL;
    mr_store_txn *t = NULL;
    mr_store_list l = {0};
    MR_ASSERT_OK(mr_store_open_memory(&s));
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(mr_store_put(t, "b:2", (const uint8_t *)"two", 3));
    MR_ASSERT_OK(mr_store_put(t, "a", (const uint8_t *)"x", 1));
    MR_ASSERT_OK(mr_store_put(t, "b:1", (const uint8_t *)"one", 3));
    MR_ASSERT_OK(mr_store_put(t, "b:10", (const uint8_t *)"", 0));
    MR_ASSERT_OK(mr_store_put(t, "c", (const uint8_t *)"c", 1));
    get_str(t, "b:1", "one"); /* own writes */
    MR_ASSERT_OK(mr_store_delete(t, "c"));
    get_str(t, "c", NULL);
    MR_ASSERT_OK(mr_store_commit(t));

    get1_str(s, "a", "x");
    get1_str(s, "b:10", "");
    get1_str(s, "c", NULL);
    get1_str(s, "zz", NULL);

    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(mr_store_put(t, "b:0", (const uint8_t *)"zero", 4));
    MR_ASSERT_OK(mr_store_delete(t, "b:10"));
    MR_ASSERT_OK(mr_store_scan(t, "b:", &l));
    assert_int_equal(l.count, 3);
    assert_string_equal(l.items[0].key, "b:0"); /* merged own write */
    assert_string_equal(l.items[1].key, "b:1");
    assert_string_equal(l.items[2].key, "b:2");
    assert_memory_equal(l.items[2].value.ptr, "two", 3);
    MR_ASSERT_OK(mr_store_scan(t, "", &l)); /* replaces the previous list */
    assert_int_equal(l.count, 4);
    MR_ASSERT_OK(mr_store_scan(t, "nothing", &l));
    assert_int_equal(l.count, 0);
    mr_store_list_free(&l);
    MR_ASSERT_OK(mr_store_commit(t));

    char *d = st_dump(s);
    assert_string_equal(d, "a=x\nb:0=zero\nb:1=one\nb:2=two\n");
    mr_free(d);

    /* usage errors */
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_FAIL(mr_store_put(t, "", (const uint8_t *)"x", 1), MR_ERR_USAGE, "empty");
    MR_ASSERT_FAIL(mr_store_put(t, "k", NULL, 3), MR_ERR_USAGE, "missing");
    mr_store_abort(t);
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_int_equal(st.keys, 4);
    assert_int_equal(st.revision, 2);
    mr_store_close(s);
}

static void test_isolation(void **state)
{
    (void)state;
    mr_store *s = NULL;
    mr_store_txn *a = NULL, *b = NULL;
    mr_store_list l = {0};
    MR_ASSERT_OK(mr_store_open_memory(&s));
    st_put(s, "k", "v1");
    st_put(s, "p/1", "1");
    MR_ASSERT_OK(mr_store_begin(s, &a));
    get_str(a, "k", "v1");
    /* another transaction commits several changes */
    MR_ASSERT_OK(mr_store_begin(s, &b));
    MR_ASSERT_OK(mr_store_put(b, "k", (const uint8_t *)"v2", 2));
    MR_ASSERT_OK(mr_store_put(b, "p/2", (const uint8_t *)"2", 1));
    MR_ASSERT_OK(mr_store_delete(b, "p/1"));
    get_str(a, "k", "v1"); /* uncommitted: invisible */
    MR_ASSERT_OK(mr_store_commit(b));
    st_put(s, "k", "v3");
    st_del(s, "k");
    /* a still reads its snapshot */
    get_str(a, "k", "v1");
    MR_ASSERT_OK(mr_store_scan(a, "p/", &l));
    assert_int_equal(l.count, 1);
    assert_string_equal(l.items[0].key, "p/1");
    mr_store_abort(a);
    get1_str(s, "k", NULL);
    get1_str(s, "p/2", "2");
    mr_store_list_free(&l);
    mr_store_close(s);
}

static void test_conflicts(void **state)
{
    (void)state;
    mr_store *s = NULL;
    mr_store_txn *a = NULL, *b = NULL;
    mr_store_list l = {0};
    MR_ASSERT_OK(mr_store_open_memory(&s));
    st_put(s, "x", "0");
    st_put(s, "y", "0");

    /* read-write conflict */
    MR_ASSERT_OK(mr_store_begin(s, &a));
    get_str(a, "x", "0");
    MR_ASSERT_OK(mr_store_put(a, "y", (const uint8_t *)"1", 1));
    st_put(s, "x", "changed");
    MR_ASSERT_FAIL(mr_store_commit(a), MR_ERR_CONFLICT, "conflict");
    get1_str(s, "y", "0");

    /* blind write-write conflict */
    MR_ASSERT_OK(mr_store_begin(s, &a));
    MR_ASSERT_OK(mr_store_put(a, "y", (const uint8_t *)"a", 1));
    st_put(s, "y", "b");
    MR_ASSERT_FAIL(mr_store_commit(a), MR_ERR_CONFLICT, "conflict");
    get1_str(s, "y", "b");

    /* a key deleted by someone else */
    MR_ASSERT_OK(mr_store_begin(s, &a));
    get_str(a, "y", "b");
    MR_ASSERT_OK(mr_store_put(a, "z", (const uint8_t *)"1", 1));
    st_del(s, "y");
    MR_ASSERT_FAIL(mr_store_commit(a), MR_ERR_CONFLICT, "conflict");

    /* phantom: a key created under a scanned prefix */
    MR_ASSERT_OK(mr_store_begin(s, &a));
    MR_ASSERT_OK(mr_store_scan(a, "user:", &l));
    assert_int_equal(l.count, 0);
    MR_ASSERT_OK(mr_store_put(a, "count", (const uint8_t *)"0", 1));
    st_put(s, "user:new", "1");
    MR_ASSERT_FAIL(mr_store_commit(a), MR_ERR_CONFLICT, "conflict");

    /* a key read as absent and then created */
    MR_ASSERT_OK(mr_store_begin(s, &a));
    get_str(a, "fresh", NULL);
    MR_ASSERT_OK(mr_store_put(a, "other", (const uint8_t *)"1", 1));
    st_put(s, "fresh", "1");
    MR_ASSERT_FAIL(mr_store_commit(a), MR_ERR_CONFLICT, "conflict");

    /* disjoint transactions both commit */
    MR_ASSERT_OK(mr_store_begin(s, &a));
    MR_ASSERT_OK(mr_store_begin(s, &b));
    get_str(a, "x", "changed");
    MR_ASSERT_OK(mr_store_put(a, "a1", (const uint8_t *)"1", 1));
    MR_ASSERT_OK(mr_store_put(b, "b1", (const uint8_t *)"1", 1));
    MR_ASSERT_OK(mr_store_commit(b));
    MR_ASSERT_OK(mr_store_commit(a));

    /* read-only transactions always commit */
    MR_ASSERT_OK(mr_store_begin(s, &a));
    get_str(a, "x", "changed");
    st_put(s, "x", "again");
    MR_ASSERT_OK(mr_store_commit(a));

    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_int_equal(st.conflicts, 5);
    mr_store_list_free(&l);
    mr_store_close(s);
}

/* Many versions while a transaction pins an old revision; all freed (ASan checks leaks). */
static void test_versions_gc(void **state)
{
    (void)state;
    mr_store *s = NULL;
    mr_store_txn *old = NULL;
    MR_ASSERT_OK(mr_store_open_memory(&s));
    st_put(s, "k", "first");
    MR_ASSERT_OK(mr_store_begin(s, &old));
    char v[32];
    for (int i = 0; i < 500; i++) {
        snprintf(v, sizeof(v), "%d", i);
        st_put(s, "k", v);
        snprintf(v, sizeof(v), "tmp%d", i);
        st_put(s, v, "x");
        st_del(s, v);
    }
    get_str(old, "k", "first");
    get_str(old, "tmp7", NULL);
    mr_store_abort(old);
    get1_str(s, "k", "499");
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_int_equal(st.keys, 1);
    mr_store_close(s);
}

/* ---- copy ---- */
static void test_copy_all(void **state)
{
    (void)state;
    mr_store *a = NULL, *b = NULL;
    MR_ASSERT_OK(mr_store_open_memory(&a));
    MR_ASSERT_OK(mr_store_open_memory(&b));
    st_put(a, "k1", "v1");
    st_put(a, "k2", "v2");
    MR_ASSERT_OK(mr_store_copy_all(a, b));
    char *d = st_dump(b);
    assert_string_equal(d, "k1=v1\nk2=v2\n");
    mr_free(d);
    mr_store_close(a);
    mr_store_close(b);
}

/* ---- embedded backend ---- */

static void reload_check(const char *dir, const char *want)
{
    mr_store *s = NULL;
    open_emb(dir, NULL, &s);
    char *d = st_dump(s);
    assert_string_equal(d, want);
    mr_free(d);
    mr_store_close(s);
}

/* Closes s, checks what a fresh open sees, and reopens s. */
static void cycle(const char *dir, mr_store **s, const mr_store_options *o, const char *want)
{
    mr_store_close(*s);
    reload_check(dir, want);
    open_emb(dir, o, s);
}

static void test_embedded_reload_each_op(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    open_emb(dir, NULL, &s);
    mr_store *second = NULL;
    MR_ASSERT_FAIL(mr_store_open_embedded(dir, st_dek, 32, NULL, &second), MR_ERR_STATE,
                   "in use");
    cycle(dir, &s, NULL, "");
    st_put(s, "a", "1");
    cycle(dir, &s, NULL, "a=1\n");
    st_put(s, "a", "2");
    cycle(dir, &s, NULL, "a=2\n");
    st_put(s, "b", "");
    cycle(dir, &s, NULL, "a=2\nb=\n");
    st_del(s, "a");
    cycle(dir, &s, NULL, "b=\n");
    st_del(s, "nonexistent");
    cycle(dir, &s, NULL, "b=\n");
    mr_store_txn *t = NULL;
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(mr_store_put(t, "m:1", (const uint8_t *)"x", 1));
    MR_ASSERT_OK(mr_store_put(t, "m:2", (const uint8_t *)"y", 1));
    MR_ASSERT_OK(mr_store_delete(t, "b"));
    MR_ASSERT_OK(mr_store_commit(t));
    cycle(dir, &s, NULL, "m:1=x\nm:2=y\n");
    /* aborted and conflicting transactions leave no trace */
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(mr_store_put(t, "gone", (const uint8_t *)"x", 1));
    mr_store_abort(t);
    cycle(dir, &s, NULL, "m:1=x\nm:2=y\n");
    /* a large value (own secret allocation) */
    uint8_t *big = mr_alloc(100000);
    for (size_t i = 0; i < 100000; i++)
        big[i] = (uint8_t)('a' + i % 26);
    MR_ASSERT_OK(mr_store_put1(s, "big", big, 100000));
    mr_store_close(s);
    open_emb(dir, NULL, &s);
    mr_buf v;
    bool found = false;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_store_get1(s, "big", &v, &found));
    assert_true(found);
    assert_int_equal(v.len, 100000);
    assert_memory_equal(v.data, big, 100000);
    mr_buf_free(&v);
    mr_free(big);
    /* reopen and continue writing after a reload */
    st_put(s, "after", "reload");
    mr_store_close(s);
    open_emb(dir, NULL, &s);
    get1_str(s, "after", "reload");
    get1_str(s, "m:2", "y");
    mr_store_close(s);
    st_rmdir(dir);
}

/* ---- group commit ---- */

typedef struct gc_ctx {
    mr_store *s;
    int id;
    int n;
} gc_ctx;

static void *committer(void *arg)
{
    gc_ctx *c = arg;
    char k[64], v[64];
    for (int i = 0; i < c->n; i++) {
        snprintf(k, sizeof(k), "t%d/%04d", c->id, i);
        snprintf(v, sizeof(v), "%d-%d", c->id, i);
        if (!mr_ok(mr_store_put1(c->s, k, (const uint8_t *)v, strlen(v))))
            return (void *)1;
    }
    return NULL;
}

static int slow_sync_calls;
static int slow_sync(void *ctx, int fd)
{
    (void)ctx;
    __atomic_add_fetch(&slow_sync_calls, 1, __ATOMIC_SEQ_CST);
    struct timespec ts = {0, 300 * 1000}; /* a slow disk: 0.3 ms per flush */
    nanosleep(&ts, NULL);
    return fdatasync(fd);
}

static void test_group_commit_threads(void **state)
{
    (void)state;
    enum { THREADS = 8, PER = 200 };
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    mr_store_io_hooks io = {.fdatasync = slow_sync};
    mr_store_options o = no_compact;
    o.io = &io;
    open_emb(dir, &o, &s);
    pthread_t th[THREADS];
    gc_ctx ctx[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ctx[i] = (gc_ctx){.s = s, .id = i, .n = PER};
        assert_int_equal(pthread_create(&th[i], NULL, committer, &ctx[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    printf("# group commit: %d commits, %llu batches, %llu fdatasync calls (%.1f commits per "
           "fdatasync)\n", THREADS * PER, (unsigned long long)st.batches,
           (unsigned long long)st.fsyncs, (double)(THREADS * PER) / (double)st.fsyncs);
    assert_int_equal(st.commits, THREADS * PER);
    assert_int_equal(st.log_records, THREADS * PER);
    assert_true(st.batches < THREADS * PER / 2); /* batching happened */
    assert_true(st.fsyncs <= st.batches + 2);
    mr_store_close(s);

    open_emb(dir, NULL, &s);
    mr_store_stats_get(s, &st);
    assert_int_equal(st.keys, THREADS * PER);
    assert_int_equal(st.revision, THREADS * PER);
    mr_store_txn *t = NULL;
    MR_ASSERT_OK(mr_store_begin(s, &t));
    char k[64], v[64];
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER; j++) {
            snprintf(k, sizeof(k), "t%d/%04d", i, j);
            snprintf(v, sizeof(v), "%d-%d", i, j);
            get_str(t, k, v);
        }
    mr_store_abort(t);
    mr_store_close(s);
    st_rmdir(dir);
}

/* Conflicting committers from several threads: every increment is applied exactly once. */
typedef struct inc_ctx {
    mr_store *s;
    int n;
    int conflicts;
    unsigned flags;
} inc_ctx;

static void *incrementer(void *arg)
{
    inc_ctx *c = arg;
    for (int done = 0; done < c->n;) {
        mr_store_txn *t = NULL;
        mr_buf v;
        bool found = false;
        char num[32];
        mr_buf_init(&v, 0, MR_BUF_SECRET);
        if (!mr_ok(mr_store_begin_ex(c->s, c->flags, &t)))
            return (void *)1;
        if (!mr_ok(mr_store_get(t, "counter", &v, &found)) || !mr_ok(mr_buf_nul_terminate(&v)))
            return (void *)1;
        long cur = found ? strtol((const char *)v.data, NULL, 10) : 0;
        mr_buf_free(&v);
        snprintf(num, sizeof(num), "%ld", cur + 1);
        if (!mr_ok(mr_store_put(t, "counter", (const uint8_t *)num, strlen(num))))
            return (void *)1;
        if (mr_ok(mr_store_commit(t)))
            done++;
        else if (mr_error_get()->cat == MR_ERR_STATE) {
            c->conflicts++;
            sched_yield(); /* back off: the winner's fsync has to finish first */
        }
        else
            return (void *)1;
    }
    return NULL;
}

static void run_increments(unsigned flags)
{
    enum { THREADS = 4, PER = 100 };
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    open_emb(dir, &no_compact, &s);
    pthread_t th[THREADS];
    inc_ctx ctx[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ctx[i] = (inc_ctx){.s = s, .n = PER, .flags = flags};
        assert_int_equal(pthread_create(&th[i], NULL, incrementer, &ctx[i]), 0);
    }
    int conflicts = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        assert_null(r);
        conflicts += ctx[i].conflicts;
    }
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    printf("# %d increments of one key by %d threads (%s): %d conflicts retried, %llu "
           "fdatasync calls\n", THREADS * PER, THREADS,
           flags & MR_STORE_TXN_LATEST ? "MR_STORE_TXN_LATEST" : "durable snapshot", conflicts,
           (unsigned long long)st.fsyncs);
    mr_store_close(s);
    open_emb(dir, NULL, &s);
    char want[16];
    snprintf(want, sizeof(want), "%d", THREADS * PER);
    get1_str(s, "counter", want);
    mr_store_close(s);
    st_rmdir(dir);
}

static void test_concurrent_increments(void **state)
{
    (void)state;
    run_increments(0);
    run_increments(MR_STORE_TXN_LATEST);
}

/* A gate in fdatasync: the test decides when (and whether) a flush completes. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered;
    bool release;
    bool fail;
} gate;

static int gated_sync(void *ctx, int fd)
{
    gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->release)
        pthread_cond_wait(&g->cv, &g->mu);
    bool fail = g->fail;
    g->fail = false;
    pthread_mutex_unlock(&g->mu);
    if (fail) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static void *put_async(void *arg)
{
    mr_store *s = arg;
    return mr_ok(mr_store_put1(s, "k", (const uint8_t *)"pending", 7)) ? NULL : (void *)1;
}

static void test_latest_reads_pending(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .release = true};
    mr_store_io_hooks io = {.fdatasync = gated_sync, .ctx = &g};
    mr_store_options o = no_compact;
    o.io = &io;
    open_emb(dir, &o, &s);
    st_put(s, "k", "durable");

    for (int round = 0; round < 2; round++) {
        bool fail = round == 1;
        pthread_mutex_lock(&g.mu);
        g.release = false;
        g.entered = 0;
        pthread_mutex_unlock(&g.mu);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, put_async, s), 0);
        pthread_mutex_lock(&g.mu);
        while (g.entered == 0)
            pthread_cond_wait(&g.cv, &g.mu);
        pthread_mutex_unlock(&g.mu);
        /* the put is written but not yet synced */
        mr_store_txn *ro = NULL, *rw = NULL, *plain = NULL;
        MR_ASSERT_OK(mr_store_begin_ex(s, MR_STORE_TXN_LATEST, &ro));
        MR_ASSERT_OK(mr_store_begin_ex(s, MR_STORE_TXN_LATEST, &rw));
        MR_ASSERT_OK(mr_store_begin(s, &plain));
        get_str(ro, "k", "pending");
        get_str(rw, "k", "pending");
        get_str(plain, "k", round == 0 ? "durable" : "pending2");
        MR_ASSERT_OK(mr_store_put(rw, "derived", (const uint8_t *)"x", 1));
        pthread_mutex_lock(&g.mu);
        g.fail = fail;
        g.release = true;
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);
        void *r = NULL;
        pthread_join(th, &r);
        if (!fail) {
            assert_null(r);
            MR_ASSERT_OK(mr_store_commit(ro));
            MR_ASSERT_OK(mr_store_commit(rw));
            get1_str(s, "derived", "x");
            st_put(s, "k", "pending2");
            st_del(s, "derived");
        } else {
            assert_non_null(r);
            MR_ASSERT_FAIL(mr_store_commit(ro), MR_ERR_CONFLICT, "conflict");
            MR_ASSERT_FAIL(mr_store_commit(rw), MR_ERR_CONFLICT, "conflict");
            get1_str(s, "k", "pending2");
            get1_str(s, "derived", NULL);
        }
        mr_store_abort(plain);
    }
    mr_store_close(s);
    reload_check(dir, "k=pending2\n");
    st_rmdir(dir);
}

/* ---- compaction ---- */

static int copy_log_on_sync;
static char *copy_dir;
static int copying_sync(void *ctx, int fd)
{
    (void)ctx;
    int r = fdatasync(fd);
    if (copy_log_on_sync) {
        size_t len = 0;
        uint8_t *b = st_read(copy_dir, "state.log", &len);
        if (len > 0)
            st_write(copy_dir, "old.log", b, len);
        mr_free(b);
    }
    return r;
}

static void test_compaction(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    mr_store_io_hooks io = {.fdatasync = copying_sync};
    mr_store_options o = {.compact_records = 10, .compact_bytes = UINT64_MAX, .io = &io};
    copy_dir = dir;
    copy_log_on_sync = 1;
    open_emb(dir, &o, &s);
    char k[32], v[32];
    for (int i = 0; i < 35; i++) {
        snprintf(k, sizeof(k), "k%02d", i % 7);
        snprintf(v, sizeof(v), "v%d", i);
        st_put(s, k, v);
        if (i % 5 == 4) {
            snprintf(k, sizeof(k), "k%02d", (i / 5) % 7);
            st_del(s, k);
        }
    }
    copy_log_on_sync = 0;
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_true(st.compactions >= 3);
    assert_true(st.log_records <= 11);
    char *before = st_dump(s);
    mr_store_close(s);
    assert_true(st_exists(dir, "state.snap"));
    assert_false(st_exists(dir, "state.snap.tmp"));
    reload_check(dir, before);

    /* compact right after a reload, then keep appending */
    copy_log_on_sync = 1;
    open_emb(dir, &o, &s);
    for (int i = 0; i < 12; i++)
        st_put(s, "after", "x");
    for (int i = 0; i < 20; i++) { /* stop right after a compaction */
        mr_store_stats_get(s, &st);
        if (st.log_records == 0)
            break;
        st_put(s, "after", i % 2 ? "y" : "x");
    }
    copy_log_on_sync = 0;
    assert_int_equal(st.log_records, 0);
    mr_store_close(s);
    open_emb(dir, NULL, &s);
    char *now = st_dump(s);
    mr_store_close(s);

    /* Crash between the snapshot rename and emptying the log: the old log (all of whose
     * records the snapshot covers) sits next to the new snapshot and must be ignored. */
    size_t len = 0;
    uint8_t *old = st_read(dir, "old.log", &len);
    assert_true(len > 0);
    st_write(dir, "state.log", old, len);
    reload_check(dir, now);
    /* and the next commit starts a fresh log after the snapshot */
    open_emb(dir, NULL, &s);
    st_put(s, "post", "1");
    mr_store_close(s);
    open_emb(dir, NULL, &s);
    get1_str(s, "post", "1");
    mr_store_close(s);
    mr_free(old);
    mr_free(before);
    mr_free(now);
    st_rmdir(dir);
}

/* A stale log (from before the last compaction) next to the snapshot is ignored. */
static void test_stale_log_after_crash(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    mr_store_options o = {.compact_records = 4, .compact_bytes = UINT64_MAX};
    open_emb(dir, &no_compact, &s);
    for (int i = 0; i < 5; i++)
        st_put(s, "k", i % 2 ? "odd" : "even");
    mr_store_close(s);
    size_t len = 0;
    uint8_t *log5 = st_read(dir, "state.log", &len); /* records 1..5 */
    open_emb(dir, &o, &s);
    st_put(s, "k", "six"); /* 6 records > 4: compaction at revision 6 */
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_int_equal(st.compactions, 1);
    mr_store_close(s);
    /* old log ending at 5 next to snapshot 6: not a stale log of this snapshot */
    st_write(dir, "state.log", log5, len);
    mr_store *bad = NULL;
    MR_ASSERT_FAIL(mr_store_open_embedded(dir, st_dek, 32, NULL, &bad), MR_ERR_CORRUPT,
                   "does not continue the snapshot");
    mr_free(log5);
    st_rmdir(dir);
}

/* ---- torn tail ---- */

static void test_torn_tail(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    open_emb(dir, &no_compact, &s);
    st_put(s, "a", "1");
    st_put(s, "b", "2");
    char *two = st_dump(s);
    size_t l2 = 0, l3 = 0;
    mr_free(st_read(dir, "state.log", &l2));
    st_put(s, "c", "a somewhat longer value for the third record");
    mr_store_close(s);
    uint8_t *full = st_read(dir, "state.log", &l3);
    assert_true(l3 > l2 + 96);
    for (size_t cut = l2; cut < l3; cut++) {
        st_write(dir, "state.log", full, cut);
        mr_store *r = NULL;
        open_emb(dir, NULL, &r);
        char *d = st_dump(r);
        assert_string_equal(d, two);
        mr_store_stats st;
        mr_store_stats_get(r, &st);
        assert_int_equal(st.torn_bytes_dropped, cut - l2);
        mr_free(d);
        if (cut == l2 + 1 || cut == l3 - 1 || cut == l2 + 70) {
            /* the next write cuts the torn bytes off first */
            st_put(r, "d", "4");
            mr_store_close(r);
            size_t nl = 0;
            mr_free(st_read(dir, "state.log", &nl));
            assert_true(nl > l2);
            open_emb(dir, NULL, &r);
            get1_str(r, "d", "4");
            get1_str(r, "c", NULL);
            get1_str(r, "b", "2");
        }
        mr_store_close(r);
    }
    /* a zero-filled tail (file size extended, data lost in a crash) is torn too */
    uint8_t *z = mr_calloc(1, l3 + 300);
    memcpy(z, full, l2);
    st_write(dir, "state.log", z, l3 + 300);
    reload_check(dir, two);
    mr_free(z);
    mr_free(full);
    mr_free(two);
    st_rmdir(dir);
}

/* ---- tampering ---- */

static void expect_corrupt(const char *dir, const char *what)
{
    mr_store *s = NULL;
    mr_error_clear();
    if (mr_ok(mr_store_open_embedded(dir, st_dek, 32, NULL, &s))) {
        char *d = st_dump(s);
        mr_store_close(s);
        fail_msg("%s: tampered state loaded: %s", what, d);
    }
    if (!mr_error_is(MR_ERR_CORRUPT) ||
        strstr(mr_error_get()->msg, "sealed state is corrupted") == NULL)
        fail_msg("%s: unexpected error %s: %s", what, mr_errcat_name(mr_error_get()->kind),
                 mr_error_get()->msg);
}

/* Record boundaries of a log image (the test trusts its own files). */
static size_t record_offsets(const uint8_t *log, size_t len, size_t *offs, size_t max)
{
    size_t n = 0, off = 0;
    while (off + 96 <= len && n < max) {
        uint32_t plen = (uint32_t)log[off + 48] | (uint32_t)log[off + 49] << 8 |
                        (uint32_t)log[off + 50] << 16 | (uint32_t)log[off + 51] << 24;
        offs[n++] = off;
        off += 96 + plen;
    }
    offs[n] = off;
    return n;
}

static void test_tampering(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    mr_store_options o = {.compact_records = 3, .compact_bytes = UINT64_MAX};
    open_emb(dir, &o, &s);
    st_put(s, "base", "b0");
    st_put(s, "base2", "b1");
    st_put(s, "x", "1");
    st_put(s, "y", "2"); /* compaction: snapshot at revision 4 */
    mr_store_close(s);
    size_t snap1_len = 0;
    uint8_t *snap1 = st_read(dir, "state.snap", &snap1_len);
    open_emb(dir, &o, &s);
    for (int i = 0; i < 4; i++)
        st_put(s, "z", i % 2 ? "odd" : "even"); /* second compaction at revision 8 */
    mr_store_stats cst;
    mr_store_stats_get(s, &cst);
    assert_int_equal(cst.compactions, 1);
    assert_int_equal(cst.log_records, 0);
    mr_store_close(s);
    open_emb(dir, &no_compact, &s);
    st_put(s, "r1", "one");
    st_put(s, "r2", "two");
    st_del(s, "x");
    st_put(s, "r4", "four");
    mr_store_close(s);
    size_t len = 0, slen = 0;
    uint8_t *log = st_read(dir, "state.log", &len);
    uint8_t *snap = st_read(dir, "state.snap", &slen);
    size_t offs[16];
    size_t n = record_offsets(log, len, offs, 15);
    assert_int_equal(n, 4);
    assert_int_equal(offs[4], len);
    open_emb(dir, NULL, &s);
    char *good = st_dump(s);
    mr_store_close(s);
    s = NULL;
    uint8_t *m = mr_alloc(len + 200);

    /* every byte of every record, flipped */
    for (size_t i = 0; i < len; i++) {
        memcpy(m, log, len);
        m[i] ^= 0x01;
        st_write(dir, "state.log", m, len);
        char what[64];
        snprintf(what, sizeof(what), "log byte %zu", i);
        expect_corrupt(dir, what);
    }
    st_write(dir, "state.log", log, len);
    reload_check(dir, good);

    /* snapshot bytes, sampled (every byte of the header, then every 3rd) */
    for (size_t i = 0; i < slen; i += (i < 40 ? 1 : 3)) {
        memcpy(m, snap, slen);
        m[i] ^= 0x80;
        st_write(dir, "state.snap", m, slen);
        char what[64];
        snprintf(what, sizeof(what), "snapshot byte %zu", i);
        expect_corrupt(dir, what);
    }
    /* truncated or extended snapshot */
    st_write(dir, "state.snap", snap, slen - 1);
    expect_corrupt(dir, "short snapshot");
    memcpy(m, snap, slen);
    m[slen] = 0;
    st_write(dir, "state.snap", m, slen + 1);
    expect_corrupt(dir, "long snapshot");
    st_write(dir, "state.snap", snap, slen);

    /* a middle record deleted */
    size_t ml = 0;
    memcpy(m, log, offs[1]);
    ml = offs[1];
    memcpy(m + ml, log + offs[2], len - offs[2]);
    ml += len - offs[2];
    st_write(dir, "state.log", m, ml);
    expect_corrupt(dir, "deleted middle record");
    /* the first record deleted */
    st_write(dir, "state.log", log + offs[1], len - offs[1]);
    expect_corrupt(dir, "deleted first record");

    /* two records swapped */
    ml = 0;
    memcpy(m, log, offs[1]);
    ml = offs[1];
    memcpy(m + ml, log + offs[2], offs[3] - offs[2]);
    ml += offs[3] - offs[2];
    memcpy(m + ml, log + offs[1], offs[2] - offs[1]);
    ml += offs[2] - offs[1];
    memcpy(m + ml, log + offs[3], len - offs[3]);
    ml += len - offs[3];
    assert_int_equal(ml, len);
    st_write(dir, "state.log", m, ml);
    expect_corrupt(dir, "swapped records");

    /* an old record replayed at the end */
    memcpy(m, log, len);
    memcpy(m + len, log + offs[1], offs[2] - offs[1]);
    st_write(dir, "state.log", m, len + offs[2] - offs[1]);
    expect_corrupt(dir, "replayed record");
    /* the last record duplicated */
    memcpy(m, log, len);
    memcpy(m + len, log + offs[3], len - offs[3]);
    st_write(dir, "state.log", m, len + len - offs[3]);
    expect_corrupt(dir, "duplicated last record");

    /* garbage between records */
    memcpy(m, log, offs[2]);
    memset(m + offs[2], 0x5a, 100);
    memcpy(m + offs[2] + 100, log + offs[2], len - offs[2]);
    st_write(dir, "state.log", m, len + 100);
    expect_corrupt(dir, "garbage in the middle");

    /* older snapshot with the newer log */
    st_write(dir, "state.log", log, len);
    st_write(dir, "state.snap", snap1, snap1_len);
    assert_true(snap1_len != slen || memcmp(snap1, snap, slen) != 0);
    expect_corrupt(dir, "older snapshot + newer log");
    /* snapshot removed, log kept */
    char p[1024];
    st_path(p, sizeof(p), dir, "state.snap");
    unlink(p);
    expect_corrupt(dir, "snapshot missing");

    /* a different state key */
    st_write(dir, "state.snap", snap, slen);
    uint8_t other[32];
    memcpy(other, st_dek, 32);
    other[0] ^= 1;
    MR_ASSERT_FAIL(mr_store_open_embedded(dir, other, 32, NULL, &s), MR_ERR_CORRUPT,
                   "sealed state is corrupted");
    reload_check(dir, good);

    mr_free(m);
    mr_free(log);
    mr_free(snap);
    mr_free(snap1);
    mr_free(good);
    st_rmdir(dir);
}

/* ---- disk full / failing sync ---- */

typedef struct fail_ctx {
    int fail_write_after; /* -1 = never; else every write from this index on fails */
    int fail_sync_after;  /* -1 = never; else every sync from this index on fails */
    int fail_syncs;       /* the next this many syncs fail */
    int fail_write_once;  /* 0 = never; else only the write with this number (1-based) fails */
    int writes, syncs;
} fail_ctx;

static ssize_t failing_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    fail_ctx *c = ctx;
    if (c->fail_write_once > 0 && ++c->writes == c->fail_write_once) {
        errno = ENOSPC;
        return -1;
    }
    if (c->fail_write_after >= 0 && c->writes++ >= c->fail_write_after) {
        /* part of the data reaches the file, then the disk is full */
        if (n > 10 && pwrite(fd, buf, n / 2, off) < 0)
            return -1;
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}

static int failing_sync(void *ctx, int fd)
{
    fail_ctx *c = ctx;
    if (c->fail_syncs > 0) {
        c->fail_syncs--;
        errno = EIO;
        return -1;
    }
    if (c->fail_sync_after >= 0 && c->syncs++ >= c->fail_sync_after) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static void test_disk_full(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    fail_ctx fc = {.fail_write_after = -1, .fail_sync_after = -1};
    mr_store_io_hooks io = {.pwrite = failing_pwrite, .fdatasync = failing_sync, .ctx = &fc};
    mr_store_options o = no_compact;
    o.io = &io;
    open_emb(dir, &o, &s);
    st_put(s, "k", "old");
    st_put(s, "keep", "1");

    fc.fail_write_after = 0;
    MR_ASSERT_FAIL(mr_store_put1(s, "k", (const uint8_t *)"new", 3), MR_ERR_IO,
                   "No space left on device");
    MR_ASSERT_FAIL(mr_store_put1(s, "z", (const uint8_t *)"new", 3), MR_ERR_IO, "writing");
    get1_str(s, "k", "old"); /* memory unchanged */
    get1_str(s, "z", NULL);
    char *mem = st_dump(s);
    assert_string_equal(mem, "k=old\nkeep=1\n");
    mr_free(mem);
    cycle(dir, &s, &o, "k=old\nkeep=1\n");

    fc.fail_write_after = -1;
    fc.fail_syncs = 1;
    MR_ASSERT_FAIL(mr_store_put1(s, "k", (const uint8_t *)"new", 3), MR_ERR_IO, "syncing");
    get1_str(s, "k", "old");
    /* the next commit on the same store works and chains after the cut-back log */
    st_put(s, "k", "old");
    cycle(dir, &s, &o, "k=old\nkeep=1\n");

    /* the disk has space again: commits continue and chain correctly */
    assert_int_equal(fc.fail_syncs, 0);
    st_put(s, "k", "newer");
    st_del(s, "keep");
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_int_equal(st.revision, 5);
    mr_store_close(s);
    reload_check(dir, "k=newer\n");
    st_rmdir(dir);
}

/* A snapshot that cannot be written: the commit that triggered it still succeeds, the log
 * keeps working, and compaction is retried after another threshold's worth of records. */
static void test_compaction_disk_full(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    fail_ctx fc = {.fail_write_after = -1, .fail_sync_after = -1, .fail_write_once = 5};
    mr_store_io_hooks io = {.pwrite = failing_pwrite, .fdatasync = failing_sync, .ctx = &fc};
    mr_store_options o = {.compact_records = 3, .compact_bytes = UINT64_MAX, .io = &io};
    open_emb(dir, &o, &s);
    st_put(s, "a", "1");
    st_put(s, "b", "2");
    st_put(s, "c", "3");
    st_put(s, "d", "4"); /* 4 records > 3: snapshot write (write #5) fails */
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_int_equal(st.compactions, 0);
    assert_int_equal(st.log_records, 4);
    assert_false(st_exists(dir, "state.snap.tmp"));
    assert_false(st_exists(dir, "state.snap"));
    st_put(s, "e", "5");
    mr_store_stats_get(s, &st);
    assert_int_equal(st.compactions, 0); /* backing off */
    st_put(s, "f", "6");
    st_put(s, "g", "7");
    st_put(s, "h", "8"); /* 8 > 4 + 3 */
    mr_store_stats_get(s, &st);
    assert_int_equal(st.compactions, 1);
    assert_int_equal(st.log_records, 0);
    mr_store_close(s);
    reload_check(dir, "a=1\nb=2\nc=3\nd=4\ne=5\nf=6\ng=7\nh=8\n");
    st_rmdir(dir);
}

/* Several committers while the disk fails: all of the failed batch report an error and none
 * of their writes survive; later commits work. */
static void test_disk_full_concurrent(void **state)
{
    (void)state;
    enum { THREADS = 4, PER = 50 };
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    fail_ctx fc = {.fail_write_after = -1, .fail_sync_after = 30};
    mr_store_io_hooks io = {.pwrite = failing_pwrite, .fdatasync = failing_sync, .ctx = &fc};
    mr_store_options o = no_compact;
    o.io = &io;
    open_emb(dir, &o, &s);
    pthread_t th[THREADS];
    gc_ctx ctx[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ctx[i] = (gc_ctx){.s = s, .id = i, .n = PER};
        assert_int_equal(pthread_create(&th[i], NULL, committer, &ctx[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        assert_non_null(r); /* every thread eventually hit the failing disk */
    }
    char *mem = st_dump(s);
    mr_store_close(s);
    reload_check(dir, mem); /* exactly the acknowledged state */
    mr_free(mem);
    st_rmdir(dir);
}

/* ---- files and modes ---- */

static void test_file_modes(void **state)
{
    (void)state;
    char *base = st_mkdtemp();
    char dir[1024], p[1024];
    st_path(dir, sizeof(dir), base, "seal");
    mr_store *s = NULL;
    mr_store_options o = {.compact_records = 1};
    open_emb(dir, &o, &s);
    st_put(s, "a", "1");
    st_put(s, "b", "2");
    mr_store_close(s);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    st_path(p, sizeof(p), dir, "state.log");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    st_path(p, sizeof(p), dir, "state.snap");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    bool ex = false;
    MR_ASSERT_OK(mr_store_embedded_exists(dir, &ex));
    assert_true(ex);
    MR_ASSERT_OK(mr_store_embedded_remove(dir));
    MR_ASSERT_OK(mr_store_embedded_exists(dir, &ex));
    assert_false(ex);
    st_rmdir(base);
}

/* ---- allocation failures never corrupt the store ---- */

static void test_alloc_failures(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    open_emb(dir, &no_compact, &s);
    st_put(s, "k", "v0");
    for (long n = 0; n < 60; n++) {
        mr_store_txn *t = NULL;
        mr_alloc_fail_after(n);
        mr_result r = mr_store_begin(s, &t);
        if (mr_ok(r)) {
            r = mr_store_put(t, "k", (const uint8_t *)"v1", 2);
            if (mr_ok(r))
                r = mr_store_put(t, "k2", (const uint8_t *)"x", 1);
            if (mr_ok(r))
                r = mr_store_commit(t);
            else
                mr_store_abort(t);
        }
        mr_alloc_fail_reset();
        if (mr_ok(r)) {
            get1_str(s, "k", "v1");
            st_put(s, "k", "v0");
            st_del(s, "k2");
        } else {
            get1_str(s, "k", "v0");
            get1_str(s, "k2", NULL);
        }
    }
    char *mem = st_dump(s);
    mr_store_close(s);
    reload_check(dir, mem);
    mr_free(mem);
    st_rmdir(dir);
}

/* ---- bytes written per commit is independent of the state size ---- */

static double bytes_per_commit(mr_store *s, int n)
{
    mr_store_stats a, b;
    mr_store_stats_get(s, &a);
    char v[64];
    for (int i = 0; i < n; i++) {
        snprintf(v, sizeof(v), "value-%08d-padding-to-48-bytes-xxxxxxxxxxxx", i);
        MR_ASSERT_OK(mr_store_put1(s, "activations:frontend", (const uint8_t *)v, strlen(v)));
    }
    mr_store_stats_get(s, &b);
    return (double)(b.bytes_written - a.bytes_written) / n;
}

static void test_commit_cost_flat(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *s = NULL;
    mr_store_options o = no_compact;
    o.no_fsync = true;
    open_emb(dir, &o, &s);
    double empty = bytes_per_commit(s, 100);
    char k[64], v[64];
    for (int b = 0; b < 100; b++) {
        mr_store_txn *t = NULL;
        MR_ASSERT_OK(mr_store_begin(s, &t));
        for (int i = 0; i < 1000; i++) {
            snprintf(k, sizeof(k), "secret:%06d", b * 1000 + i);
            snprintf(v, sizeof(v), "value-%08d-padding-to-48-bytes-xxxxxxxxxxxx", i);
            MR_ASSERT_OK(mr_store_put(t, k, (const uint8_t *)v, strlen(v)));
        }
        MR_ASSERT_OK(mr_store_commit(t));
    }
    mr_store_stats st;
    mr_store_stats_get(s, &st);
    assert_true(st.keys >= 100000);
    double full = bytes_per_commit(s, 100);
    printf("# bytes written per commit: %.1f at 1 key, %.1f at %llu keys\n", empty, full,
           (unsigned long long)st.keys);
    assert_true(full == empty);
    mr_store_close(s);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    open_emb(dir, NULL, &s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("# reload of %llu keys from the log: %.1f ms\n", (unsigned long long)st.keys,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    mr_store_close(s);
    st_rmdir(dir);
}

static const struct CMUnitTest store_tests[] = {
    cmocka_unit_test(test_basic_ops),
    cmocka_unit_test(test_isolation),
    cmocka_unit_test(test_conflicts),
    cmocka_unit_test(test_versions_gc),
    cmocka_unit_test(test_copy_all),
    cmocka_unit_test(test_embedded_reload_each_op),
    cmocka_unit_test(test_group_commit_threads),
    cmocka_unit_test(test_concurrent_increments),
    cmocka_unit_test(test_latest_reads_pending),
    cmocka_unit_test(test_compaction),
    cmocka_unit_test(test_stale_log_after_crash),
    cmocka_unit_test(test_torn_tail),
    cmocka_unit_test(test_tampering),
    cmocka_unit_test(test_disk_full),
    cmocka_unit_test(test_disk_full_concurrent),
    cmocka_unit_test(test_compaction_disk_full),
    cmocka_unit_test(test_file_modes),
    cmocka_unit_test(test_alloc_failures),
    cmocka_unit_test(test_commit_cost_flat),
};

st_suite st_store_suite(void)
{
    return (st_suite){"store", store_tests, MR_ARRAY_LEN(store_tests)};
}
