/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TTLS engine: the application gets one end of an AF_UNIX socketpair (its "app end"),
 * an engine thread runs TLS on the real TCP socket and moves bytes between the two.
 *
 *   application fd (app end) <== socketpair ==> pfd (engine) <== TLS ==> tcp (engine)
 *
 * Descriptor table: for every fd number, nothing (not ours: every hook passes through after
 * one atomic load), INTERNAL (a descriptor of the engine: the application cannot close it), or
 * the shared record ("meta") of a TTLS connection whose app end it is: its TCP addresses,
 * handshake state and pending SO_ERROR. A meta records the inode of its app end, so that an
 * fd number reused behind our back (a close we did not see, e.g. fclose of an fdopen'd socket)
 * is recognised and forgotten.
 *
 * Connections (one struct conn each) belong to one engine thread ("worker"), which owns the
 * SSL, both descriptors and the buffers; application threads only create a conn and hand it
 * over under the worker's mutex. Locks: a worker's mutex, then mr_ttls_lock (table and metas),
 * never the other way round.
 *
 * Outgoing, non-blocking connect(): the app end is swapped into the application's fd number
 * at once (dup3, keeping its epoll registrations) and made unwritable until the handshake is
 * done: its send buffer is shrunk and filled with junk bytes that the engine discards after
 * the handshake. So poll/epoll/select report it writable exactly when a plain socket would
 * report a finished connect, and SO_ERROR then tells success or the failure. A blocking
 * connect() waits for the handshake and swaps on success only.
 * Incoming: accept() returns the app end at once; the handshake runs in the engine and no byte
 * reaches the application before the peer is verified. A blocking accept() waits up to
 * accept_wait_ms for the handshake and answers ECONNABORTED if it fails in that time.
 *
 * This file: the descriptor table and metas, the workers and their connections, and the life
 * cycle (init, fork, flush at exit, reset). engine_pump.c takes a connection through its
 * handshake and moves its bytes; engine_sock.c holds the hooks on the application's
 * descriptors; engine_int.h is what they share.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "ttls/engine_int.h"
#include "ttls/ttls.h"

#define WORKERS_MAX 16

/* ---- descriptor table ---- */

pthread_mutex_t mr_ttls_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(_Atomic(uintptr_t) *) g_slots[CHUNKS];
static _Atomic(mr_ttls_config *) g_active;
mr_ttls_opts mr_ttls_engine_opts = {
    .handshake_timeout_ms = 10000, .accept_wait_ms = 1000, .connect_wait_ms = 10000, .threads = 1};

uintptr_t mr_ttls_slot_get(int fd)
{
    if (fd < 0 || fd >= CHUNK * CHUNKS)
        return 0;
    _Atomic(uintptr_t) *c = atomic_load_explicit(&g_slots[fd / CHUNK], memory_order_acquire);
    return c != NULL ? atomic_load_explicit(&c[fd % CHUNK], memory_order_acquire) : 0;
}

/* Under mr_ttls_lock. False when fd cannot be tracked. */
bool mr_ttls_slot_set(int fd, uintptr_t v)
{
    if (fd < 0 || fd >= CHUNK * CHUNKS)
        return v == 0;
    _Atomic(uintptr_t) *c = atomic_load_explicit(&g_slots[fd / CHUNK], memory_order_acquire);
    if (c == NULL) {
        if (v == 0)
            return true;
        c = mr_calloc(CHUNK, sizeof(*c));
        if (c == NULL)
            return false;
        atomic_store_explicit(&g_slots[fd / CHUNK], c, memory_order_release);
    }
    atomic_store_explicit(&c[fd % CHUNK], v, memory_order_release);
    return true;
}


/* Under mr_ttls_lock. */
void mr_ttls_meta_unref(meta *m)
{
    if (m != NULL && --m->refs == 0) {
        (void)pthread_cond_destroy(&m->cv);
        mr_free(m);
    }
}

meta *mr_ttls_meta_new(void)
{
    meta *m = mr_calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_condattr_t a;
    (void)pthread_condattr_init(&a);
    (void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (pthread_cond_init(&m->cv, &a) != 0) {
        (void)pthread_condattr_destroy(&a);
        mr_free(m);
        return NULL;
    }
    (void)pthread_condattr_destroy(&a);
    m->refs = 1;
    m->tcp = -1;
    return m;
}

ino_t mr_ttls_fd_ino(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* The meta of fd (a reference the caller releases with mr_ttls_meta_put), or NULL. A stale entry
 * (the fd number now names another file) is dropped. */
meta *mr_ttls_meta_get(int fd)
{
    uintptr_t v = mr_ttls_slot_get(fd);
    if (!mr_ttls_slot_is_meta(v))
        return NULL;
    ino_t ino = mr_ttls_fd_ino(fd);
    (void)pthread_mutex_lock(&mr_ttls_lock);
    v = mr_ttls_slot_get(fd);
    meta *m = mr_ttls_slot_is_meta(v) ? (meta *)v : NULL;
    if (m != NULL && m->ino != ino) {
        (void)mr_ttls_slot_set(fd, 0);
        mr_ttls_meta_unref(m);
        m = NULL;
    } else if (m != NULL) {
        m->refs++;
    }
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    return m;
}

void mr_ttls_meta_put(meta *m)
{
    (void)pthread_mutex_lock(&mr_ttls_lock);
    mr_ttls_meta_unref(m);
    (void)pthread_mutex_unlock(&mr_ttls_lock);
}

/* ---- connections and workers ---- */

static pthread_mutex_t g_start_lock = PTHREAD_MUTEX_INITIALIZER;
static worker g_workers[WORKERS_MAX];
static unsigned g_next_worker;
static pthread_once_t g_workers_once = PTHREAD_ONCE_INIT;

static void workers_init(void)
{
    for (int i = 0; i < WORKERS_MAX; i++) {
        (void)pthread_mutex_init(&g_workers[i].mu, NULL);
        g_workers[i].ep = g_workers[i].evfd = -1;
    }
}

/* eventfd wake-ups: the result does not matter (a full counter still wakes the worker) */
static void evfd_put(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof(one));
    (void)r;
}

static void evfd_take(int fd)
{
    uint64_t v = 0;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
}

int64_t mr_ttls_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mr_ttls_close_internal(int fd)
{
    if (fd < 0)
        return;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    (void)mr_ttls_slot_set(fd, 0);
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    (void)mr_ttls_real.close(fd);
}

void mr_ttls_conn_leave_hs(conn *c)
{
    if (c->in_hs) {
        c->in_hs = false;
        c->w->n_hs--;
    }
}

/* Releases everything of a connection; the struct itself is freed after the current batch. */
void mr_ttls_conn_teardown(conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    mr_ttls_conn_leave_hs(c);
    (void)mr_ttls_real.epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->tcp, NULL);
    (void)mr_ttls_real.epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->pfd, NULL);
    SSL_free(c->ssl);
    c->ssl = NULL;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    if (c->m->state == ST_PENDING) {
        c->m->state = ST_FAILED;
        if (c->m->error == 0)
            c->m->error = c->client ? ECONNREFUSED : ECONNRESET;
        (void)pthread_cond_broadcast(&c->m->cv);
    }
    c->m->tcp = -1;
    (void)mr_ttls_slot_set(c->tcp, 0);
    (void)mr_ttls_slot_set(c->pfd, 0);
    if (c->adup >= 0)
        (void)mr_ttls_slot_set(c->adup, 0);
    mr_ttls_meta_unref(c->m);
    c->m = NULL;
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    (void)mr_ttls_real.close(c->tcp);
    (void)mr_ttls_real.close(c->pfd);
    if (c->adup >= 0)
        (void)mr_ttls_real.close(c->adup);
    c->tcp = c->pfd = c->adup = -1;
    worker *w = c->w;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->grave_next = w->grave;
    w->grave = c;
}

void mr_ttls_conn_free(conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    mr_free_wipe(c->a2n, BUF_CAP);
    mr_free_wipe(c->n2a, BUF_CAP);
    mr_free(c);
}

void mr_ttls_conn_again(conn *c)
{
    if (!c->again) {
        c->again = true;
        c->again_next = c->w->again;
        c->w->again = c;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct epoll_event evs[64];
    for (;;) {
        (void)pthread_mutex_lock(&w->mu);
        int timeout = w->again != NULL ? 0 : w->n_hs > 0 ? 100 : -1;
        bool stop = w->stop;
        (void)pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        int n = epoll_wait(w->ep, evs, (int)MR_ARRAY_LEN(evs), timeout);
        (void)pthread_mutex_lock(&w->mu);
        for (int i = 0; i < n; i++) {
            uint64_t u = evs[i].data.u64;
            if (u == 0) {
                evfd_take(w->evfd);
                continue;
            }
            conn *c = (conn *)(uintptr_t)(u & ~(uint64_t)1);
            if (c->dead)
                continue;
            uint32_t ev = evs[i].events;
            bool rd = (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            bool wr = (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
            if ((u & 1) != 0) {
                c->app_rd |= rd;
                c->app_wr |= wr;
                if ((ev & EPOLLHUP) != 0)
                    c->app_noread = true; /* the application closed its end */
            } else {
                c->net_rd |= rd;
                c->net_wr |= wr;
            }
            mr_ttls_conn_drive(c);
        }
        conn *again = w->again;
        w->again = NULL;
        while (again != NULL) {
            conn *c = again;
            again = c->again_next;
            c->again = false;
            mr_ttls_conn_drive(c);
        }
        mr_ttls_worker_deadlines(w);
        conn *keep = NULL;
        while (w->grave != NULL) {
            conn *c = w->grave;
            w->grave = c->grave_next;
            if (c->again) { /* still on the list of the next round: free it after that */
                c->grave_next = keep;
                keep = c;
                continue;
            }
            mr_ttls_conn_free(c);
        }
        w->grave = keep;
        (void)pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

/* The worker for a new connection (started on first use). NULL on failure (errno set). */
static worker *pick_worker(void)
{
    (void)pthread_once(&g_workers_once, workers_init);
    (void)pthread_mutex_lock(&g_start_lock);
    unsigned nt = mr_ttls_engine_opts.threads == 0 ? 1 : mr_ttls_engine_opts.threads > WORKERS_MAX ? WORKERS_MAX : mr_ttls_engine_opts.threads;
    worker *w = &g_workers[g_next_worker++ % nt];
    if (!w->started) {
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
        bool ok = w->ep >= 0 && w->evfd >= 0 &&
                  mr_ttls_real.epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ev) == 0;
        if (ok) {
            (void)pthread_mutex_lock(&mr_ttls_lock);
            ok = mr_ttls_slot_set(w->ep, SLOT_INTERNAL) && mr_ttls_slot_set(w->evfd, SLOT_INTERNAL);
            (void)pthread_mutex_unlock(&mr_ttls_lock);
        }
        sigset_t all, old;
        (void)sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &old); /* signals are for the application */
        w->stop = false;
        ok = ok && pthread_create(&w->th, NULL, worker_main, w) == 0;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!ok) {
            mr_ttls_close_internal(w->ep);
            mr_ttls_close_internal(w->evfd);
            w->ep = w->evfd = -1;
            (void)pthread_mutex_unlock(&g_start_lock);
            errno = EAGAIN;
            return NULL;
        }
        w->started = true;
    }
    (void)pthread_mutex_unlock(&g_start_lock);
    return w;
}

bool mr_ttls_conn_add(conn *c)
{
    worker *w = pick_worker();
    if (w == NULL)
        return false;
    (void)pthread_mutex_lock(&w->mu);
    c->w = w;
    c->next = w->head;
    if (w->head != NULL)
        w->head->prev = c;
    w->head = c;
    c->in_hs = true;
    w->n_hs++;
    struct epoll_event t = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                            .data.u64 = (uint64_t)(uintptr_t)c};
    struct epoll_event p = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                            .data.u64 = (uint64_t)(uintptr_t)c | 1};
    bool ok = mr_ttls_real.epoll_ctl(w->ep, EPOLL_CTL_ADD, c->tcp, &t) == 0 &&
              mr_ttls_real.epoll_ctl(w->ep, EPOLL_CTL_ADD, c->pfd, &p) == 0;
    if (!ok) {
        int e = errno;
        c->grave_next = NULL;
        mr_ttls_conn_teardown(c); /* frees the descriptors and the meta reference */
        w->grave = c->grave_next; /* not the real graveyard: the caller does not own c now */
        (void)pthread_mutex_unlock(&w->mu);
        mr_ttls_conn_free(c);
        errno = e;
        return false;
    }
    mr_ttls_conn_again(c); /* a first drive, whatever epoll reports */
    evfd_put(w->evfd);
    (void)pthread_mutex_unlock(&w->mu);
    return true;
}

conn *mr_ttls_conn_new(const mr_ttls_entry *e, meta *m, int tcp, int pfd, bool client,
                       const char *name)
{
    conn *c = mr_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->a2n = mr_alloc(BUF_CAP);
    c->n2a = mr_alloc(BUF_CAP);
    c->tcp = tcp;
    c->pfd = pfd;
    c->adup = -1;
    c->e = e;
    c->m = m;
    c->net_rd = c->net_wr = c->app_rd = c->app_wr = true;
    c->client = client;
    c->deadline = mr_ttls_now_ms() + (int64_t)mr_ttls_engine_opts.handshake_timeout_ms;
    c->ssl = c->a2n != NULL && c->n2a != NULL ? mr_ttls_ssl_new(e, tcp, client, name, c) : NULL;
    if (c->ssl == NULL) {
        mr_ttls_conn_free(c);
        return NULL;
    }
    char ip[INET6_ADDRSTRLEN] = "?";
    const struct sockaddr *sa = (const struct sockaddr *)&m->peer;
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        (void)inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    (void)snprintf(c->peer, sizeof(c->peer), sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
                   (unsigned)port);
    return c;
}

/* Waits until the handshake of m is decided or ms passed; returns the state. */
int mr_ttls_meta_wait(meta *m, unsigned ms)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_mutex_lock(&mr_ttls_lock);
    while (m->state == ST_PENDING)
        if (pthread_cond_timedwait(&m->cv, &mr_ttls_lock, &ts) == ETIMEDOUT)
            break;
    int st = m->state;
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    return st;
}

const mr_ttls_config *mr_ttls_active(void)
{
    return atomic_load_explicit(&g_active, memory_order_acquire);
}

/* ---- process exit ---- */

static _Atomic(pid_t) g_engine_pid; /* the process whose engine threads run (fork updates it) */

/* The process ends: whatever the application wrote must still reach the peer, as the kernel
 * would send it from a plain socket. Each connection is pumped here (the worker holds off),
 * and, once what the application wrote is out, ended with close_notify. */
void mr_ttls_flush_all(unsigned ms)
{
    if (mr_ttls_active() == NULL || atomic_load(&g_engine_pid) != getpid())
        return; /* nothing started, or a vfork child sharing its parent's memory */
    int64_t end = mr_ttls_now_ms() + ms;
    for (int i = 0; i < WORKERS_MAX; i++) {
        worker *w = &g_workers[i];
        if (!w->started)
            continue;
        (void)pthread_mutex_lock(&w->mu);
        for (;;) {
            bool pending = false;
            struct pollfd pf[64];
            nfds_t np = 0;
            for (conn *c = w->head, *next = NULL; c != NULL; c = next) {
                next = c->next;
                c->net_rd = c->net_wr = c->app_rd = c->app_wr = true; /* no events here: try */
                mr_ttls_conn_drive(c);
                if (c->dead)
                    continue;
                int q = 0;
                if (ioctl(c->pfd, FIONREAD, &q) != 0 || q < 0)
                    q = 0;
                /* bytes the application wrote (behind the junk of an unfinished connect) */
                bool data = (size_t)q > c->junk || c->a2n_off < c->a2n_len;
                if (data) {
                    pending = true; /* waits for a handshake under way, too */
                    if (np < MR_ARRAY_LEN(pf))
                        pf[np++] = (struct pollfd){.fd = c->tcp, .events = POLLIN | POLLOUT};
                } else if (c->phase == PH_OPEN && !c->app_eof) {
                    c->app_eof = c->app_noread = true; /* the application's end goes with it */
                    mr_ttls_conn_pump(c);
                }
            }
            if (!pending || mr_ttls_now_ms() >= end)
                break;
            (void)poll(pf, np, 10);
        }
        (void)pthread_mutex_unlock(&w->mu);
    }
}

/* ---- life cycle ---- */

static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    (void)pthread_atfork(mr_ttls_fork_prepare, mr_ttls_fork_parent, mr_ttls_fork_child);
}

MR_RESULT mr_ttls_engine_init(mr_ttls_config *cfg, const mr_ttls_opts *opts)
{
    MR_ENSURE(mr_ttls_active() == NULL, MR_ERR_INTERNAL, "internal error: TTLS is active already");
    for (size_t i = 0; i < cfg->count; i++)
        MR_ENSURE(!cfg->entries[i].creds || cfg->entries[i].ctx != NULL, MR_ERR_INTERNAL,
                  "internal error: TTLS entry %s has no TLS context", cfg->entries[i].key);
    mr_ttls_libc_resolve();
    (void)pthread_once(&g_workers_once, workers_init);
    mr_ttls_ereg_init();
    (void)pthread_once(&g_atfork_once, atfork_register);
    if (opts != NULL)
        mr_ttls_engine_opts = *opts;
    if (mr_ttls_engine_opts.handshake_timeout_ms == 0)
        mr_ttls_engine_opts.handshake_timeout_ms = 10000;
    atomic_store(&g_engine_pid, getpid());
    atomic_store_explicit(&g_active, cfg, memory_order_release);
    return MR_SUCCESS;
}

void mr_ttls_fork_prepare(void)
{
    (void)pthread_mutex_lock(&g_start_lock);
    for (int i = 0; i < WORKERS_MAX; i++)
        (void)pthread_mutex_lock(&g_workers[i].mu);
    (void)pthread_mutex_lock(&mr_ttls_lock);
    mr_ttls_ereg_lock_all();
    mr_ttls_names_fork_prepare();
}

static void unlock_all(void)
{
    mr_ttls_names_fork_done();
    mr_ttls_ereg_unlock_all();
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    for (int i = WORKERS_MAX - 1; i >= 0; i--)
        (void)pthread_mutex_unlock(&g_workers[i].mu);
    (void)pthread_mutex_unlock(&g_start_lock);
}

void mr_ttls_fork_parent(void) { unlock_all(); }

void mr_ttls_fork_child(void)
{
    unlock_all();
    atomic_store(&g_engine_pid, getpid());
    /* Only the forking thread exists here: the engine threads stayed in the parent, which
     * keeps serving the connections (the app ends inherited here keep working while it runs).
     * The child closes its copies of the engine's descriptors, so that closing a connection
     * in the parent still reaches the peer, and starts its own engine on first use. No
     * OpenSSL call here: the connection structs are left to the parent. */
    (void)pthread_mutex_lock(&mr_ttls_lock);
    for (int i = 0; i < WORKERS_MAX; i++) {
        worker *w = &g_workers[i];
        if (!w->started)
            continue;
        for (conn *c = w->head; c != NULL; c = c->next) {
            int fds[3] = {c->tcp, c->pfd, c->adup};
            for (int k = 0; k < 3; k++) {
                if (fds[k] >= 0) {
                    (void)mr_ttls_slot_set(fds[k], 0);
                    (void)mr_ttls_real.close(fds[k]);
                }
            }
            if (c->m != NULL)
                c->m->tcp = -1;
        }
        (void)mr_ttls_slot_set(w->ep, 0);
        (void)mr_ttls_slot_set(w->evfd, 0);
        (void)mr_ttls_real.close(w->ep);
        (void)mr_ttls_real.close(w->evfd);
        w->ep = w->evfd = -1;
        w->head = w->again = w->grave = NULL;
        w->n_hs = 0;
        w->started = false;
    }
    (void)pthread_mutex_unlock(&mr_ttls_lock);
}

void mr_ttls_engine_reset(void)
{
    (void)pthread_once(&g_workers_once, workers_init);
    for (int i = 0; i < WORKERS_MAX; i++) {
        worker *w = &g_workers[i];
        if (!w->started)
            continue;
        (void)pthread_mutex_lock(&w->mu);
        w->stop = true;
        evfd_put(w->evfd);
        (void)pthread_mutex_unlock(&w->mu);
        (void)pthread_join(w->th, NULL);
        while (w->head != NULL)
            mr_ttls_conn_teardown(w->head);
        while (w->grave != NULL) {
            conn *c = w->grave;
            w->grave = c->grave_next;
            mr_ttls_conn_free(c);
        }
        w->again = NULL;
        mr_ttls_close_internal(w->ep);
        mr_ttls_close_internal(w->evfd);
        w->ep = w->evfd = -1;
        w->n_hs = 0;
        w->started = false;
    }
    g_next_worker = 0;
    mr_ttls_config *cfg = atomic_exchange(&g_active, NULL);
    mr_ttls_config_free(cfg);
    mr_free(cfg);
    (void)pthread_mutex_lock(&mr_ttls_lock);
    for (int i = 0; i < CHUNKS; i++) {
        _Atomic(uintptr_t) *c = atomic_exchange(&g_slots[i], NULL);
        if (c != NULL)
            for (int k = 0; k < CHUNK; k++)
                if (mr_ttls_slot_is_meta(atomic_load(&c[k])))
                    mr_ttls_meta_unref((meta *)atomic_load(&c[k]));
        void *raw = NULL;
        memcpy(&raw, &c, sizeof(raw)); /* the chunk without its _Atomic qualifier */
        mr_free(raw);
    }
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    mr_ttls_ereg_reset();
    mr_ttls_names_reset();
}
