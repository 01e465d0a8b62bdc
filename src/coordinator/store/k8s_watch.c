/* SPDX-License-Identifier: Apache-2.0 */
/* A Kubernetes watch on a thread of its own (k8s_client.h): one streaming GET at a time,
 * its lines parsed into events, reconnects with a bounded backoff. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/rpc/rpc.h"
#include "coordinator/store/k8s_client.h"

#define WATCH_LINE_MAX ((size_t)4 << 20)
#define WATCH_POLL_MS 200u
#define WATCH_CONNECT_MS 2000u
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u

struct mr_k8s_watch {
    mr_k8s *k;
    mr_k8s_kind kind;
    char selector[256];
    char rv[64];
    mr_k8s_watch_fn fn;
    void *ud;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint64_t events, reconnects;
};

static bool stopping(mr_k8s_watch *w)
{
    pthread_mutex_lock(&w->mu);
    bool s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* Waits ms or until stopped. */
static void pause_ms(mr_k8s_watch *w, unsigned ms)
{
    struct timespec until;
    (void)clock_gettime(CLOCK_REALTIME, &until);
    uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)ms * 1000000u;
    until.tv_sec += (time_t)(ns / 1000000000u);
    until.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&w->mu);
}

/* The watch path, starting at w->rv (none: the current objects first). */
static MR_RESULT watch_path(const mr_k8s_watch *w, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "/api/v1/namespaces/%s/%s?watch=1&allowWatchBookmarks=true&labelSelector=%s"
                     "%s%s",
                     mr_k8s_namespace(w->k), w->kind == MR_K8S_SECRET ? "secrets" : "configmaps",
                     w->selector, w->rv[0] != '\0' ? "&resourceVersion=" : "", w->rv);
    MR_ENSURE(n > 0 && (size_t)n < cap, MR_ERR_USAGE, "kubernetes: watch path too long");
    return MR_SUCCESS;
}

/* One event: hand it on, note its version. *gone for a 410. */
static void handle_event(mr_k8s_watch *w, const mr_k8s_event *ev, bool *gone)
{
    if (ev->type == MR_K8S_EV_ERROR) {
        if (ev->code == 410)
            *gone = true;
        else
            MR_LOG_WARN("kubernetes watch: the API server ended the watch",
                        MR_F_INT("code", ev->code), MR_F_STR("message", ev->message));
        return;
    }
    if (ev->obj.rv[0] != '\0')
        memcpy(w->rv, ev->obj.rv, sizeof(w->rv));
    if (ev->type == MR_K8S_EV_BOOKMARK)
        return;
    w->fn(w->ud, ev);
    pthread_mutex_lock(&w->mu);
    w->events++;
    pthread_mutex_unlock(&w->mu);
}

/* Every complete line of acc as an event. *ended once the watch must start over. */
static MR_RESULT drain_lines(mr_k8s_watch *w, mr_buf *acc, bool *gone, bool *ended)
{
    mr_result res = MR_FAILURE;
    mr_buf line;
    mr_buf_init(&line, 0, MR_BUF_SECRET);
    for (;;) {
        bool got = false;
        MR_GUARD_OUT(mr_k8s_take_line(acc, WATCH_LINE_MAX, &line, &got));
        if (!got)
            break;
        if (line.len == 0)
            continue;
        mr_k8s_event ev;
        MR_GUARD_OUT(mr_k8s_parse_watch_event(w->kind, mr_buf_slice(&line), &ev));
        handle_event(w, &ev, gone);
        mr_k8s_event_free(&ev);
        if (*gone) {
            *ended = true;
            break;
        }
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&line);
    return res;
}

/* One watch request, followed until it ends, breaks or the watch stops. *answered when the
 * API server accepted it (200). */
static MR_RESULT follow(mr_k8s_watch *w, bool *answered, bool *gone)
{
    mr_result res = MR_FAILURE;
    char path[768];
    mr_rpc_conn *c = NULL;
    mr_rpc_stream *st = NULL;
    mr_buf acc;
    mr_buf_init(&acc, WATCH_LINE_MAX + (1u << 20), MR_BUF_SECRET);
    MR_GUARD_OUT(watch_path(w, path, sizeof(path)));
    MR_GUARD_OUT(mr_k8s_stream_get(w->k, path, WATCH_LINE_MAX, mr_rpc_now_ms() + WATCH_CONNECT_MS,
                                   &c, &st));
    uint64_t header_deadline = mr_rpc_now_ms() + WATCH_CONNECT_MS * 3;
    bool ended = false;
    while (!ended && !stopping(w)) {
        int status = 0;
        MR_GUARD_OUT(mr_rpc_http_stream_recv(st, mr_rpc_now_ms() + WATCH_POLL_MS, &acc, &ended,
                                             &status));
        if (status == 410) {
            *gone = true;
            break;
        }
        MR_ENSURE_OUT(status == 200 || (status == 0 && mr_rpc_now_ms() < header_deadline),
                      MR_ERR_UNAVAILABLE, "kubernetes watch: answered %d", status);
        *answered = status == 200;
        MR_GUARD_OUT(drain_lines(w, &acc, gone, &ended));
    }
    res = MR_SUCCESS;
out:
    mr_rpc_stream_close(st);
    mr_rpc_close(c);
    mr_buf_free(&acc);
    return res;
}

static void *run(void *arg)
{
    mr_k8s_watch *w = arg;
    unsigned backoff = BACKOFF_MIN_MS;
    bool first = true;
    while (!stopping(w)) {
        if (!first) {
            pthread_mutex_lock(&w->mu);
            w->reconnects++;
            pthread_mutex_unlock(&w->mu);
        }
        first = false;
        bool answered = false, gone = false;
        if (!mr_ok(follow(w, &answered, &gone))) {
            MR_LOG_INFO("kubernetes watch: reconnecting", MR_F_ERR());
            mr_error_clear();
        }
        if (gone)
            w->rv[0] = '\0'; /* that version is compacted away: start from the current objects */
        if (answered || gone)
            backoff = BACKOFF_MIN_MS;
        pause_ms(w, backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

MR_RESULT mr_k8s_watch_start(mr_k8s *k, mr_k8s_kind kind, const char *selector, const char *rv,
                             mr_k8s_watch_fn fn, void *ud, mr_k8s_watch **out)
{
    MR_ENSURE(strlen(selector) < 256 && (rv == NULL || strlen(rv) < 64), MR_ERR_USAGE,
              "kubernetes watch: selector or version too long");
    mr_k8s_watch *w = mr_calloc(1, sizeof(*w));
    MR_ENSURE_ALLOC(w);
    w->k = k;
    w->kind = kind;
    memcpy(w->selector, selector, strlen(selector) + 1);
    if (rv != NULL)
        memcpy(w->rv, rv, strlen(rv) + 1);
    w->fn = fn;
    w->ud = ud;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        mr_free(w);
        MR_BAIL(MR_ERR_INTERNAL, "kubernetes watch: cannot start its thread");
    }
    *out = w;
    return MR_SUCCESS;
}

void mr_k8s_watch_stop(mr_k8s_watch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    (void)pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    mr_free(w);
}

void mr_k8s_watch_counts(mr_k8s_watch *w, uint64_t *events, uint64_t *reconnects)
{
    pthread_mutex_lock(&w->mu);
    *events = w->events;
    *reconnects = w->reconnects;
    pthread_mutex_unlock(&w->mu);
}
