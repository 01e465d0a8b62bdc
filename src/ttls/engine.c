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
 * over under the worker's mutex. Locks: a worker's mutex, then g_lock (table and metas),
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
#include "ttls/ttls.h"

#define BUF_CAP 16384
#define WORKERS_MAX 16
#define ROUNDS 32          /* pump rounds per event before other connections get a turn */
#define CONFIRM_MS 1500    /* a TLS 1.3 server that sends no ticket: assume it accepted us */

/* ---- descriptor table ---- */

#define CHUNK 1024
#define CHUNKS 1024 /* fds below 1M are tracked; beyond, TTLS connections are refused */
#define SLOT_INTERNAL ((uintptr_t)1)

typedef struct meta {
    int refs; /* g_lock */
    int state;
    int error;
    int tcp; /* the engine's TCP socket, for socket options; -1 once closed */
    ino_t ino;
    int family;
    struct sockaddr_storage local, peer;
    socklen_t local_len, peer_len;
    pthread_cond_t cv;
} meta;

enum { ST_PENDING = 0, ST_OPEN, ST_FAILED };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(_Atomic(uintptr_t) *) g_slots[CHUNKS];
static _Atomic(mr_ttls_config *) g_active;
static mr_ttls_opts g_opts = {
    .handshake_timeout_ms = 10000, .accept_wait_ms = 1000, .connect_wait_ms = 10000, .threads = 1};

static uintptr_t slot_get(int fd)
{
    if (fd < 0 || fd >= CHUNK * CHUNKS)
        return 0;
    _Atomic(uintptr_t) *c = atomic_load_explicit(&g_slots[fd / CHUNK], memory_order_acquire);
    return c != NULL ? atomic_load_explicit(&c[fd % CHUNK], memory_order_acquire) : 0;
}

/* Under g_lock. False when fd cannot be tracked. */
static bool slot_set(int fd, uintptr_t v)
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

static bool is_meta(uintptr_t v) { return v > SLOT_INTERNAL; }

/* Under g_lock. */
static void meta_unref(meta *m)
{
    if (m != NULL && --m->refs == 0) {
        (void)pthread_cond_destroy(&m->cv);
        mr_free(m);
    }
}

static meta *meta_new(void)
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

static ino_t fd_ino(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* The meta of fd (a reference the caller releases with put_meta), or NULL. A stale entry
 * (the fd number now names another file) is dropped. */
static meta *get_meta(int fd)
{
    uintptr_t v = slot_get(fd);
    if (!is_meta(v))
        return NULL;
    ino_t ino = fd_ino(fd);
    (void)pthread_mutex_lock(&g_lock);
    v = slot_get(fd);
    meta *m = is_meta(v) ? (meta *)v : NULL;
    if (m != NULL && m->ino != ino) {
        (void)slot_set(fd, 0);
        meta_unref(m);
        m = NULL;
    } else if (m != NULL) {
        m->refs++;
    }
    (void)pthread_mutex_unlock(&g_lock);
    return m;
}

static void put_meta(meta *m)
{
    (void)pthread_mutex_lock(&g_lock);
    meta_unref(m);
    (void)pthread_mutex_unlock(&g_lock);
}

/* ---- epoll registrations (so that a swapped connect() keeps them) ---- */

#define STRIPES 64

typedef struct ereg {
    _Atomic(int) n;
    int epfd[2];
    struct epoll_event ev[2];
} ereg;

static pthread_mutex_t g_ereg_lock[STRIPES];
static pthread_once_t g_ereg_once = PTHREAD_ONCE_INIT;
static _Atomic(ereg *) g_ereg[CHUNKS];

static void ereg_init(void)
{
    for (int i = 0; i < STRIPES; i++)
        (void)pthread_mutex_init(&g_ereg_lock[i], NULL);
}

static ereg *ereg_at(int fd, bool create)
{
    if (fd < 0 || fd >= CHUNK * CHUNKS)
        return NULL;
    ereg *c = atomic_load_explicit(&g_ereg[fd / CHUNK], memory_order_acquire);
    if (c == NULL && create) {
        ereg *n = mr_calloc(CHUNK, sizeof(*n));
        if (n == NULL)
            return NULL;
        ereg *expect = NULL;
        if (atomic_compare_exchange_strong(&g_ereg[fd / CHUNK], &expect, n))
            c = n;
        else {
            mr_free(n);
            c = expect;
        }
    }
    return c != NULL ? &c[fd % CHUNK] : NULL;
}

void mr_ttls_epoll_ctl_done(int epfd, int op, int fd, const struct epoll_event *ev)
{
    const mr_ttls_config *cfg = mr_ttls_active();
    if (cfg == NULL || cfg->n_out == 0)
        return;
    (void)pthread_once(&g_ereg_once, ereg_init);
    ereg *r = ereg_at(fd, op != EPOLL_CTL_DEL);
    if (r == NULL)
        return;
    pthread_mutex_t *l = &g_ereg_lock[fd % STRIPES];
    (void)pthread_mutex_lock(l);
    int n = atomic_load(&r->n), k = 0;
    while (k < n && r->epfd[k] != epfd)
        k++;
    if (op == EPOLL_CTL_DEL) {
        if (k < n) {
            r->epfd[k] = r->epfd[n - 1];
            r->ev[k] = r->ev[n - 1];
            atomic_store(&r->n, n - 1);
        }
    } else if (ev != NULL) {
        if (k == n && n < 2) {
            r->epfd[n] = epfd;
            atomic_store(&r->n, n + 1);
        }
        if (k < 2)
            r->ev[k] = *ev;
    }
    (void)pthread_mutex_unlock(l);
}

static void ereg_clear(int fd)
{
    ereg *r = ereg_at(fd, false);
    if (r == NULL || atomic_load_explicit(&r->n, memory_order_relaxed) == 0)
        return;
    (void)pthread_once(&g_ereg_once, ereg_init);
    (void)pthread_mutex_lock(&g_ereg_lock[fd % STRIPES]);
    atomic_store(&r->n, 0);
    (void)pthread_mutex_unlock(&g_ereg_lock[fd % STRIPES]);
}

typedef struct live_regs {
    int n;
    int epfd[2];
    struct epoll_event ev[2];
} live_regs;

/* Removes fd's registrations that are still live (the old file) and returns them. */
static void regs_detach(int fd, live_regs *out)
{
    out->n = 0;
    ereg *r = ereg_at(fd, false);
    if (r == NULL || atomic_load(&r->n) == 0)
        return;
    (void)pthread_once(&g_ereg_once, ereg_init);
    (void)pthread_mutex_lock(&g_ereg_lock[fd % STRIPES]);
    int n = atomic_load(&r->n);
    for (int i = 0; i < n && i < 2; i++) {
        if (mr_ttls_real.epoll_ctl(r->epfd[i], EPOLL_CTL_DEL, fd, NULL) == 0) {
            out->epfd[out->n] = r->epfd[i];
            out->ev[out->n] = r->ev[i];
            out->n++;
        }
    }
    (void)pthread_mutex_unlock(&g_ereg_lock[fd % STRIPES]);
}

static void regs_attach(int fd, live_regs *regs)
{
    for (int i = 0; i < regs->n; i++)
        (void)mr_ttls_real.epoll_ctl(regs->epfd[i], EPOLL_CTL_ADD, fd, &regs->ev[i]);
}

/* ---- connections and workers ---- */

enum { PH_CONNECTING = 0, PH_HANDSHAKE, PH_CONFIRM, PH_OPEN };

typedef struct worker worker;

typedef struct conn {
    struct conn *prev, *next, *again_next, *grave_next;
    worker *w;
    meta *m;
    const mr_ttls_entry *e;
    SSL *ssl;
    int tcp, pfd, adup;
    int sndbuf;    /* app end send buffer to restore after the handshake (async connect) */
    size_t junk;   /* junk bytes to discard from pfd (async connect) */
    bool client, confirmed, again, dead, in_hs;
    int phase;
    bool app_eof;    /* the application will write no more (read 0 from pfd) */
    bool app_noread; /* the application will read no more (fully closed or SHUT_RD) */
    bool net_eof;    /* the peer sent close_notify */
    bool net_dead;   /* the TLS connection failed after the handshake */
    bool pfd_shut, cn_sent;
    /* readiness as epoll last reported it (edge-triggered): no call that would only say
     * EAGAIN; set by events, cleared by EAGAIN / WANT_* */
    bool net_rd, net_wr, app_rd, app_wr;
    int64_t deadline, confirm_deadline;
    char peer[INET6_ADDRSTRLEN + 8];
    uint8_t *a2n, *n2a;
    size_t a2n_len, a2n_off, n2a_len, n2a_off;
} conn;

struct worker {
    pthread_t th;
    bool started, stop;
    int ep, evfd;
    pthread_mutex_t mu;
    conn *head, *again, *grave;
    size_t n_hs;
};

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

static int64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_internal(int fd)
{
    if (fd < 0)
        return;
    (void)pthread_mutex_lock(&g_lock);
    (void)slot_set(fd, 0);
    (void)pthread_mutex_unlock(&g_lock);
    (void)mr_ttls_real.close(fd);
}

static void set_state(conn *c, int state, int err)
{
    (void)pthread_mutex_lock(&g_lock);
    if (c->m->state == ST_PENDING || state == ST_FAILED)
        c->m->state = state;
    if (err != 0)
        c->m->error = err;
    (void)pthread_cond_broadcast(&c->m->cv);
    (void)pthread_mutex_unlock(&g_lock);
}

static void leave_handshake(conn *c)
{
    if (c->in_hs) {
        c->in_hs = false;
        c->w->n_hs--;
    }
}

/* Releases everything of a connection; the struct itself is freed after the current batch. */
static void teardown(conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    leave_handshake(c);
    (void)mr_ttls_real.epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->tcp, NULL);
    (void)mr_ttls_real.epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->pfd, NULL);
    SSL_free(c->ssl);
    c->ssl = NULL;
    (void)pthread_mutex_lock(&g_lock);
    if (c->m->state == ST_PENDING) {
        c->m->state = ST_FAILED;
        if (c->m->error == 0)
            c->m->error = c->client ? ECONNREFUSED : ECONNRESET;
        (void)pthread_cond_broadcast(&c->m->cv);
    }
    c->m->tcp = -1;
    (void)slot_set(c->tcp, 0);
    (void)slot_set(c->pfd, 0);
    if (c->adup >= 0)
        (void)slot_set(c->adup, 0);
    meta_unref(c->m);
    c->m = NULL;
    (void)pthread_mutex_unlock(&g_lock);
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

static void conn_free(conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    mr_free_wipe(c->a2n, BUF_CAP);
    mr_free_wipe(c->n2a, BUF_CAP);
    mr_free(c);
}

static void fail(conn *c, int err, const char *reason)
{
    set_state(c, ST_FAILED, err);
    mr_ttls_log(MR_TTLS_WARN, c->client ? "TLS connection refused" : "refused a connection",
                "entry", c->e->key, "peer", c->peer, "reason", reason, (const char *)NULL);
    teardown(c);
}

static void fail_tls(conn *c, int ret, int err)
{
    char reason[320];
    mr_ttls_ssl_reason(c->ssl, ret, reason, sizeof(reason));
    fail(c, err, reason);
}

void mr_ttls_conn_confirmed(void *owner)
{
    conn *c = owner;
    c->confirmed = true;
}

static void opened(conn *c)
{
    c->phase = PH_OPEN;
    leave_handshake(c);
    set_state(c, ST_OPEN, 0);
    if (c->adup >= 0) {
        if (c->sndbuf > 0)
            (void)mr_ttls_real.setsockopt(c->adup, SOL_SOCKET, SO_SNDBUF, &c->sndbuf,
                                          sizeof(c->sndbuf));
        close_internal(c->adup);
        c->adup = -1;
    }
    mr_ttls_log(MR_TTLS_DEBUG, "TLS connection established", "entry", c->e->key, "peer", c->peer,
                "version", SSL_get_version(c->ssl), (const char *)NULL);
}

static void net_broken(conn *c, int ret)
{
    char reason[320];
    mr_ttls_ssl_reason(c->ssl, ret, reason, sizeof(reason));
    c->net_dead = true;
    (void)pthread_mutex_lock(&g_lock);
    if (c->m->error == 0)
        c->m->error = ECONNRESET;
    (void)pthread_mutex_unlock(&g_lock);
    mr_ttls_log(MR_TTLS_DEBUG, "TLS connection failed", "entry", c->e->key, "peer", c->peer,
                "reason", reason, (const char *)NULL);
}

static void schedule_again(conn *c)
{
    if (!c->again) {
        c->again = true;
        c->again_next = c->w->again;
        c->w->again = c;
    }
}

static bool retry(int e) { return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE; }

static bool would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

static void pump(conn *c)
{
    for (int round = 0; round < ROUNDS; round++) {
        bool progress = false;
        while (c->junk > 0 && c->app_rd) {
            uint8_t tmp[4096];
            ssize_t n = recv(c->pfd, tmp, c->junk < sizeof(tmp) ? c->junk : sizeof(tmp),
                             MSG_DONTWAIT);
            if (n < 0 && would_block())
                c->app_rd = false;
            if (n <= 0)
                break;
            c->junk -= (size_t)n;
            progress = true;
        }
        /* network -> application */
        if (c->n2a_off < c->n2a_len) {
            if (c->app_noread) {
                c->n2a_off = c->n2a_len = 0;
            } else if (c->app_wr) {
                ssize_t n = send(c->pfd, c->n2a + c->n2a_off, c->n2a_len - c->n2a_off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0) {
                    c->n2a_off += (size_t)n;
                    progress = true;
                } else if (n < 0 && would_block()) {
                    c->app_wr = false;
                } else if (n < 0) {
                    c->app_noread = true; /* the application shut down reading or closed */
                    progress = true;
                }
                if (c->app_noread || c->n2a_off == c->n2a_len)
                    c->n2a_off = c->n2a_len = 0;
            }
        }
        if (c->n2a_len == 0 && !c->net_eof && !c->net_dead &&
            (c->net_rd || SSL_has_pending(c->ssl))) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, c->n2a, BUF_CAP);
            if (r > 0) {
                c->n2a_len = (size_t)r;
                c->n2a_off = 0;
                progress = true;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ) {
                    c->net_rd = false;
                } else if (e == SSL_ERROR_WANT_WRITE) {
                    c->net_wr = false;
                } else if (e == SSL_ERROR_ZERO_RETURN) {
                    c->net_eof = true;
                    progress = true;
                } else {
                    net_broken(c, r);
                    progress = true;
                }
            }
        }
        if ((c->net_eof || c->net_dead) && c->n2a_len == 0 && !c->pfd_shut) {
            (void)shutdown(c->pfd, SHUT_WR); /* the application reads EOF */
            c->pfd_shut = true;
        }
        /* application -> network */
        if (c->a2n_off < c->a2n_len && !c->net_dead && c->net_wr) {
            ERR_clear_error();
            int r = SSL_write(c->ssl, c->a2n + c->a2n_off, (int)(c->a2n_len - c->a2n_off));
            int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
            if (r > 0) {
                c->a2n_off += (size_t)r;
                progress = true;
            } else if (e == SSL_ERROR_WANT_WRITE) {
                c->net_wr = false;
            } else if (e == SSL_ERROR_WANT_READ) {
                c->net_rd = false; /* a post-handshake message first: wait for the network */
            } else {
                net_broken(c, r);
                progress = true;
            }
        }
        if (c->net_dead || c->a2n_off == c->a2n_len)
            c->a2n_off = c->a2n_len = 0;
        if (c->a2n_len == 0 && !c->app_eof && c->app_rd && c->junk == 0) {
            ssize_t n = recv(c->pfd, c->a2n, BUF_CAP, MSG_DONTWAIT);
            if (n > 0) {
                c->a2n_len = c->net_dead ? 0 : (size_t)n;
                progress = true;
            } else if (n == 0) {
                c->app_eof = true;
                progress = true;
            } else if (would_block()) {
                c->app_rd = false;
            } else {
                c->app_eof = c->app_noread = true;
                progress = true;
            }
        }
        /* the application's write side is done: close_notify (TLS 1.3 half-close) */
        if (c->app_eof && c->a2n_len == 0 && !c->cn_sent && !c->net_dead) {
            ERR_clear_error();
            int r = SSL_shutdown(c->ssl);
            if (r >= 0) {
                c->cn_sent = true;
                (void)shutdown(c->tcp, SHUT_WR);
                progress = true;
            } else if (!retry(SSL_get_error(c->ssl, r))) {
                net_broken(c, r);
                progress = true;
            }
        }
        bool out_done = c->app_eof && (c->cn_sent || c->net_dead);
        bool in_done = c->app_noread || ((c->net_eof || c->net_dead) && c->n2a_len == 0);
        if ((out_done && in_done) || (c->net_dead && c->n2a_len == 0)) {
            teardown(c);
            return;
        }
        if (!progress)
            return;
    }
    schedule_again(c); /* more to do: after the other connections had their turn */
}

static void drive(conn *c)
{
    if (c->dead)
        return;
    if (c->phase == PH_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        if (mr_ttls_real.getsockopt(c->tcp, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
            err = errno;
        if (err != 0) {
            char reason[128];
            (void)snprintf(reason, sizeof(reason), "connect: %s", strerror(err));
            fail(c, err, reason);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (mr_ttls_real.getpeername(c->tcp, (struct sockaddr *)&ss, &sl) != 0)
            return; /* still connecting */
        c->phase = PH_HANDSHAKE;
    }
    if (c->phase == PH_HANDSHAKE) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            if (!retry(SSL_get_error(c->ssl, r)))
                fail_tls(c, r, c->client ? ECONNREFUSED : ECONNRESET);
            return;
        }
        if (c->client && SSL_version(c->ssl) == TLS1_3_VERSION && !c->confirmed) {
            /* TLS 1.3: the server checks our certificate after our Finished; its session
             * ticket (or first data) says it accepted us, an alert that it did not */
            c->phase = PH_CONFIRM;
            c->confirm_deadline = now_ms() + CONFIRM_MS;
        } else {
            opened(c);
        }
    }
    if (c->phase == PH_CONFIRM) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->n2a, BUF_CAP);
        if (r > 0) {
            c->n2a_len = (size_t)r;
            c->n2a_off = 0;
            opened(c);
        } else {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN) {
                c->net_eof = true;
                opened(c);
            } else if (!retry(e)) {
                fail_tls(c, r, ECONNREFUSED);
                return;
            } else if (c->confirmed) {
                opened(c);
            } else {
                return;
            }
        }
    }
    if (c->phase == PH_OPEN)
        pump(c);
}

static void check_deadlines(worker *w)
{
    if (w->n_hs == 0)
        return;
    int64_t now = now_ms();
    for (conn *c = w->head, *next = NULL; c != NULL; c = next) {
        next = c->next;
        if (c->dead || !c->in_hs)
            continue;
        if (c->phase == PH_CONFIRM && now >= c->confirm_deadline) {
            opened(c);
            pump(c);
        } else if (now >= c->deadline) {
            fail(c, ETIMEDOUT, "handshake timed out");
        }
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
            drive(c);
        }
        conn *again = w->again;
        w->again = NULL;
        while (again != NULL) {
            conn *c = again;
            again = c->again_next;
            c->again = false;
            drive(c);
        }
        check_deadlines(w);
        conn *keep = NULL;
        while (w->grave != NULL) {
            conn *c = w->grave;
            w->grave = c->grave_next;
            if (c->again) { /* still on the list of the next round: free it after that */
                c->grave_next = keep;
                keep = c;
                continue;
            }
            conn_free(c);
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
    unsigned nt = g_opts.threads == 0 ? 1 : g_opts.threads > WORKERS_MAX ? WORKERS_MAX : g_opts.threads;
    worker *w = &g_workers[g_next_worker++ % nt];
    if (!w->started) {
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
        bool ok = w->ep >= 0 && w->evfd >= 0 &&
                  mr_ttls_real.epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ev) == 0;
        if (ok) {
            (void)pthread_mutex_lock(&g_lock);
            ok = slot_set(w->ep, SLOT_INTERNAL) && slot_set(w->evfd, SLOT_INTERNAL);
            (void)pthread_mutex_unlock(&g_lock);
        }
        sigset_t all, old;
        (void)sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &old); /* signals are for the application */
        w->stop = false;
        ok = ok && pthread_create(&w->th, NULL, worker_main, w) == 0;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!ok) {
            close_internal(w->ep);
            close_internal(w->evfd);
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

static bool add_to_worker(conn *c)
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
        teardown(c); /* frees the descriptors and the meta reference */
        w->grave = c->grave_next; /* not the real graveyard: the caller does not own c now */
        (void)pthread_mutex_unlock(&w->mu);
        conn_free(c);
        errno = e;
        return false;
    }
    schedule_again(c); /* a first drive, whatever epoll reports */
    evfd_put(w->evfd);
    (void)pthread_mutex_unlock(&w->mu);
    return true;
}

static conn *conn_new(const mr_ttls_entry *e, meta *m, int tcp, int pfd, bool client,
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
    c->deadline = now_ms() + (int64_t)g_opts.handshake_timeout_ms;
    c->ssl = c->a2n != NULL && c->n2a != NULL ? mr_ttls_ssl_new(e, tcp, client, name, c) : NULL;
    if (c->ssl == NULL) {
        conn_free(c);
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
static int wait_state(meta *m, unsigned ms)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_mutex_lock(&g_lock);
    while (m->state == ST_PENDING)
        if (pthread_cond_timedwait(&m->cv, &g_lock, &ts) == ETIMEDOUT)
            break;
    int st = m->state;
    (void)pthread_mutex_unlock(&g_lock);
    return st;
}

const mr_ttls_config *mr_ttls_active(void)
{
    return atomic_load_explicit(&g_active, memory_order_acquire);
}

/* ---- outgoing ---- */

static int refuse(const mr_ttls_entry *e, const char *what, int err)
{
    mr_ttls_log(MR_TTLS_WARN, what, "entry", e->key, "reason",
                "this process has no TTLS credentials (they are handed only to programs "
                "started through exec with the library preloaded)",
                (const char *)NULL);
    errno = err;
    return -1;
}

static int connect_again(meta *m)
{
    (void)pthread_mutex_lock(&g_lock);
    int st = m->state, err = m->error;
    if (st == ST_FAILED)
        m->error = 0;
    (void)pthread_mutex_unlock(&g_lock);
    put_meta(m);
    errno = st == ST_PENDING ? EALREADY : st == ST_OPEN ? EISCONN : err != 0 ? err : ECONNABORTED;
    return -1;
}

/* Puts the app end `app` at the application's fd number, keeping its epoll registrations
 * and close-on-exec flag. */
static bool swap_in(int fd, int app)
{
    int fdfl = mr_ttls_real.fcntl(fd, F_GETFD);
    live_regs regs;
    regs_detach(fd, &regs);
    if (mr_ttls_real.dup3(app, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        regs_attach(fd, &regs);
        return false;
    }
    regs_attach(fd, &regs);
    return true;
}

/* Takes over a TCP socket whose connect() is under way (or done): the app end goes to the
 * application's fd number at once, unwritable until the handshake is done. A blocking
 * connect() then waits for the handshake up to connect_wait_ms (a server that has not called
 * accept() yet cannot shake hands: the connection is handed over anyway, as plain TCP would
 * complete it from the listen queue). ret_errno: what a non-blocking connect() answers
 * (EINPROGRESS), or EINTR, or 0 for a blocking one. */
static int client_start(int fd, const mr_ttls_entry *e, const char *name,
                        const struct sockaddr *sa, socklen_t len, int fl, bool connected,
                        int ret_errno)
{
    int sv[2] = {-1, -1}, tcp = -1, err = ENOMEM;
    meta *m = NULL;
    conn *c = NULL;
    tcp = mr_ttls_real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (tcp < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
        err = errno;
        goto fail;
    }
    m = meta_new();
    if (m == NULL)
        goto fail;
    m->family = sa->sa_family;
    memcpy(&m->peer, sa, len < sizeof(m->peer) ? len : sizeof(m->peer));
    m->peer_len = len;
    m->local_len = sizeof(m->local);
    if (mr_ttls_real.getsockname(fd, (struct sockaddr *)&m->local, &m->local_len) != 0)
        m->local_len = 0;
    m->ino = fd_ino(sv[0]);
    m->tcp = tcp;
    c = conn_new(e, m, tcp, sv[1], true, name);
    if (c == NULL)
        goto fail;
    c->phase = connected ? PH_HANDSHAKE : PH_CONNECTING;
    /* unwritable until the handshake is done: a tiny send buffer, filled */
    int sb = 0, one = 1;
    socklen_t sl = sizeof(sb);
    if (mr_ttls_real.getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sb, &sl) == 0)
        c->sndbuf = sb / 2; /* the kernel doubles what is set */
    (void)mr_ttls_real.setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
    static const uint8_t junk[512];
    for (int i = 0; i < 256; i++) {
        ssize_t n = send(sv[0], junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        c->junk += (size_t)n;
    }
    c->adup = mr_ttls_real.fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
    if (c->adup < 0 || ((fl & O_NONBLOCK) == 0 && mr_ttls_real.fcntl(sv[0], F_SETFL, O_RDWR) != 0) ||
        ((fl & O_NONBLOCK) == 0 && mr_ttls_real.fcntl(tcp, F_SETFL, fl | O_NONBLOCK) != 0)) {
        err = errno;
        goto fail;
    }
    (void)pthread_mutex_lock(&g_lock);
    bool tracked = slot_set(tcp, SLOT_INTERNAL) && slot_set(sv[1], SLOT_INTERNAL) &&
                   slot_set(c->adup, SLOT_INTERNAL);
    (void)pthread_mutex_unlock(&g_lock);
    if (!tracked || !swap_in(fd, sv[0])) {
        err = tracked ? errno : EMFILE;
        (void)pthread_mutex_lock(&g_lock);
        (void)slot_set(tcp, 0);
        (void)slot_set(sv[1], 0);
        (void)slot_set(c->adup, 0);
        (void)pthread_mutex_unlock(&g_lock);
        goto fail;
    }
    /* from here on fd is the app end: the TCP socket is the engine's */
    (void)mr_ttls_real.close(sv[0]);
    sv[0] = -1;
    (void)pthread_mutex_lock(&g_lock);
    m->refs += 2; /* the table's and ours */
    if (!slot_set(fd, (uintptr_t)m))
        m->refs--;
    (void)pthread_mutex_unlock(&g_lock);
    if (!add_to_worker(c)) { /* it released c, its descriptors and its meta reference */
        err = errno;
        put_meta(m);
        (void)mr_ttls_close(fd);
        errno = err;
        return -1;
    }
    int rc = -1;
    err = ret_errno;
    if (ret_errno == 0) {
        int st = wait_state(m, g_opts.connect_wait_ms);
        if (st == ST_FAILED) {
            (void)pthread_mutex_lock(&g_lock);
            err = m->error != 0 ? m->error : ECONNREFUSED;
            m->error = 0; /* reported here, not again by SO_ERROR */
            (void)pthread_mutex_unlock(&g_lock);
        } else {
            rc = 0;
        }
    }
    put_meta(m);
    if (rc != 0)
        errno = err;
    return rc;

fail:
    if (c != NULL) {
        if (c->adup >= 0)
            (void)mr_ttls_real.close(c->adup);
        conn_free(c);
    }
    if (m != NULL)
        put_meta(m);
    if (sv[0] >= 0)
        (void)mr_ttls_real.close(sv[0]);
    if (sv[1] >= 0)
        (void)mr_ttls_real.close(sv[1]);
    if (tcp >= 0) {
        (void)mr_ttls_real.fcntl(fd, F_SETFL, fl); /* shared with fd */
        (void)mr_ttls_real.close(tcp);
    }
    errno = err;
    return -1;
}

int mr_ttls_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    const mr_ttls_config *cfg = mr_ttls_active();
    if (cfg == NULL || cfg->n_out == 0 || sa == NULL ||
        (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return mr_ttls_real.connect(fd, sa, len);
    meta *m = get_meta(fd);
    if (m != NULL)
        return connect_again(m);
    const char *name = NULL;
    const mr_ttls_entry *e = mr_ttls_match_outgoing(cfg, sa, len, &name);
    int type = 0, proto = 0;
    socklen_t tl = sizeof(type), pl = sizeof(proto);
    if (e == NULL || mr_ttls_real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
        type != SOCK_STREAM ||
        mr_ttls_real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) != 0 ||
        proto != IPPROTO_TCP)
        return mr_ttls_real.connect(fd, sa, len);
    if (!e->creds)
        return refuse(e, "refused a connection to a TTLS endpoint", ECONNREFUSED);
    int fl = mr_ttls_real.fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    int r = mr_ttls_real.connect(fd, sa, len);
    if (r != 0 && errno != EINPROGRESS && errno != EINTR)
        return r;
    int ret_errno = r == 0 ? 0 : errno;
    if (ret_errno == 0 && (fl & O_NONBLOCK) != 0)
        ret_errno = EINPROGRESS; /* connected at once, but the handshake is not */
    if (ret_errno == EINPROGRESS && (fl & O_NONBLOCK) == 0)
        ret_errno = 0; /* cannot happen: a blocking connect() does not answer EINPROGRESS */
    return client_start(fd, e, name, sa, len, fl, r == 0, ret_errno);
}

/* ---- incoming ---- */

static void copy_addr(struct sockaddr *dst, socklen_t *dlen, const struct sockaddr_storage *src,
                      socklen_t slen)
{
    if (dst == NULL || dlen == NULL)
        return;
    socklen_t n = *dlen < slen ? *dlen : slen;
    memcpy(dst, src, n);
    *dlen = slen;
}

int mr_ttls_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags, bool four)
{
    const mr_ttls_config *cfg = mr_ttls_active();
    if (cfg == NULL || cfg->n_in == 0)
        return four ? mr_ttls_real.accept4(fd, sa, len, flags) : mr_ttls_real.accept(fd, sa, len);
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof(peer), ll = sizeof(local);
    int s = four ? mr_ttls_real.accept4(fd, (struct sockaddr *)&peer, &pl, flags)
                 : mr_ttls_real.accept(fd, (struct sockaddr *)&peer, &pl);
    if (s < 0)
        return s;
    const mr_ttls_entry *e = NULL;
    uint8_t ip[16];
    uint16_t port = 0;
    if ((peer.ss_family == AF_INET || peer.ss_family == AF_INET6) &&
        mr_ttls_real.getsockname(s, (struct sockaddr *)&local, &ll) == 0 &&
        mr_ttls_sockaddr_ip((struct sockaddr *)&local, ll, ip, &port) != 0)
        e = mr_ttls_match_incoming(cfg, port);
    if (e == NULL) {
        copy_addr(sa, len, &peer, pl);
        return s;
    }
    if (!e->creds) {
        (void)mr_ttls_real.close(s);
        return refuse(e, "refused a connection on a TTLS port", ECONNABORTED);
    }
    int sv[2] = {-1, -1}, err = ENOMEM;
    meta *m = NULL;
    conn *c = NULL;
    int lfl = mr_ttls_real.fcntl(fd, F_GETFL);
    int sfl = mr_ttls_real.fcntl(s, F_GETFL);
    if (sfl < 0 || mr_ttls_real.fcntl(s, F_SETFL, sfl | O_NONBLOCK) != 0 ||
        mr_ttls_real.fcntl(s, F_SETFD, FD_CLOEXEC) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0 ||
        ((flags & SOCK_NONBLOCK) == 0 && mr_ttls_real.fcntl(sv[0], F_SETFL, O_RDWR) != 0) ||
        ((flags & SOCK_CLOEXEC) == 0 && mr_ttls_real.fcntl(sv[0], F_SETFD, 0) != 0)) {
        err = errno;
        goto fail;
    }
    m = meta_new();
    if (m == NULL)
        goto fail;
    m->family = peer.ss_family;
    m->peer = peer;
    m->peer_len = pl;
    m->local = local;
    m->local_len = ll;
    m->ino = fd_ino(sv[0]);
    m->tcp = s;
    c = conn_new(e, m, s, sv[1], false, NULL);
    if (c == NULL)
        goto fail;
    c->phase = PH_HANDSHAKE;
    (void)pthread_mutex_lock(&g_lock);
    bool tracked = slot_set(s, SLOT_INTERNAL) && slot_set(sv[1], SLOT_INTERNAL) &&
                   slot_set(sv[0], (uintptr_t)m);
    if (tracked)
        m->refs += 2; /* the table's and ours */
    (void)pthread_mutex_unlock(&g_lock);
    if (!tracked) {
        err = EMFILE;
        goto fail;
    }
    if (!add_to_worker(c)) {
        err = errno;
        (void)pthread_mutex_lock(&g_lock);
        (void)slot_set(sv[0], 0);
        m->refs -= 2;
        meta_unref(m);
        (void)pthread_mutex_unlock(&g_lock);
        (void)mr_ttls_real.close(sv[0]);
        errno = err;
        return -1;
    }
    if (lfl >= 0 && (lfl & O_NONBLOCK) == 0 &&
        wait_state(m, g_opts.accept_wait_ms) == ST_FAILED) {
        put_meta(m);
        (void)mr_ttls_close(sv[0]);
        errno = ECONNABORTED;
        return -1;
    }
    put_meta(m);
    copy_addr(sa, len, &peer, pl);
    return sv[0];

fail:
    if (c != NULL)
        conn_free(c);
    if (m != NULL)
        put_meta(m);
    if (sv[0] >= 0)
        (void)mr_ttls_real.close(sv[0]);
    if (sv[1] >= 0)
        (void)mr_ttls_real.close(sv[1]);
    (void)mr_ttls_real.close(s);
    errno = err;
    return -1;
}

/* ---- descriptors ---- */

int mr_ttls_close(int fd)
{
    uintptr_t v = slot_get(fd);
    if (v == SLOT_INTERNAL) {
        errno = EBADF; /* not the application's */
        return -1;
    }
    if (v != 0) {
        (void)pthread_mutex_lock(&g_lock);
        v = slot_get(fd);
        if (is_meta(v)) {
            (void)slot_set(fd, 0);
            meta_unref((meta *)v);
        }
        (void)pthread_mutex_unlock(&g_lock);
    }
    ereg_clear(fd);
    return mr_ttls_real.close(fd);
}

int mr_ttls_dup_done(int oldfd, int newfd)
{
    if (newfd < 0 || !is_meta(slot_get(oldfd)))
        return newfd;
    (void)pthread_mutex_lock(&g_lock);
    uintptr_t v = slot_get(oldfd), prev = slot_get(newfd);
    if (is_meta(v) && slot_set(newfd, v)) {
        ((meta *)v)->refs++;
        if (is_meta(prev))
            meta_unref((meta *)prev);
    }
    (void)pthread_mutex_unlock(&g_lock);
    return newfd;
}

int mr_ttls_dup2(int oldfd, int newfd, int flags, bool three)
{
    if (slot_get(newfd) == SLOT_INTERNAL && oldfd != newfd) {
        errno = EBUSY;
        return -1;
    }
    int r = three ? mr_ttls_real.dup3(oldfd, newfd, flags) : mr_ttls_real.dup2(oldfd, newfd);
    if (r < 0 || oldfd == newfd)
        return r;
    ereg_clear(newfd);
    if (slot_get(oldfd) == 0 && slot_get(newfd) == 0)
        return r;
    (void)pthread_mutex_lock(&g_lock);
    uintptr_t v = slot_get(oldfd), prev = slot_get(newfd);
    if (is_meta(prev)) {
        (void)slot_set(newfd, 0);
        meta_unref((meta *)prev);
    }
    if (is_meta(v) && slot_set(newfd, v))
        ((meta *)v)->refs++;
    (void)pthread_mutex_unlock(&g_lock);
    return r;
}

int mr_ttls_getname(int fd, struct sockaddr *sa, socklen_t *len, bool peer)
{
    meta *m = get_meta(fd);
    if (m == NULL)
        return peer ? mr_ttls_real.getpeername(fd, sa, len) : mr_ttls_real.getsockname(fd, sa, len);
    int rc = 0;
    (void)pthread_mutex_lock(&g_lock);
    bool connected = m->state == ST_OPEN;
    (void)pthread_mutex_unlock(&g_lock);
    if (len == NULL || sa == NULL) {
        errno = EFAULT;
        rc = -1;
    } else if (peer && !connected) {
        errno = ENOTCONN;
        rc = -1;
    } else {
        copy_addr(sa, len, peer ? &m->peer : &m->local, peer ? m->peer_len : m->local_len);
    }
    put_meta(m);
    return rc;
}

static int put_int(void *val, socklen_t *len, int v)
{
    if (val == NULL || len == NULL || *len < (socklen_t)sizeof(int)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(val, &v, sizeof(v));
    *len = sizeof(int);
    return 0;
}

/* Options that belong to the TCP connection rather than to the application's end. */
static bool tcp_option(int level, int name)
{
    if (level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6)
        return true;
    return level == SOL_SOCKET &&
           (name == SO_KEEPALIVE || name == SO_LINGER || name == SO_PRIORITY || name == SO_MARK ||
            name == SO_BINDTODEVICE || name == SO_INCOMING_CPU || name == SO_REUSEADDR ||
            name == SO_REUSEPORT);
}

int mr_ttls_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    meta *m = get_meta(fd);
    if (m == NULL)
        return mr_ttls_real.getsockopt(fd, level, name, val, len);
    int rc = 0;
    if (level == SOL_SOCKET && name == SO_ERROR) {
        (void)pthread_mutex_lock(&g_lock);
        int e = m->state == ST_PENDING ? 0 : m->error;
        if (m->state != ST_PENDING)
            m->error = 0;
        (void)pthread_mutex_unlock(&g_lock);
        rc = put_int(val, len, e);
    } else if (level == SOL_SOCKET && name == SO_DOMAIN) {
        rc = put_int(val, len, m->family);
    } else if (level == SOL_SOCKET && name == SO_PROTOCOL) {
        rc = put_int(val, len, IPPROTO_TCP);
    } else if (level == SOL_SOCKET && name == SO_ACCEPTCONN) {
        rc = put_int(val, len, 0);
    } else if (tcp_option(level, name)) {
        (void)pthread_mutex_lock(&g_lock); /* the engine closes m->tcp only under g_lock */
        if (m->tcp >= 0) {
            rc = mr_ttls_real.getsockopt(m->tcp, level, name, val, len);
        } else {
            errno = ENOTCONN;
            rc = -1;
        }
        (void)pthread_mutex_unlock(&g_lock);
    } else {
        rc = mr_ttls_real.getsockopt(fd, level, name, val, len);
    }
    put_meta(m);
    return rc;
}

int mr_ttls_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    meta *m = get_meta(fd);
    if (m == NULL)
        return mr_ttls_real.setsockopt(fd, level, name, val, len);
    int rc = 0;
    if (tcp_option(level, name)) {
        (void)pthread_mutex_lock(&g_lock);
        if (m->tcp >= 0)
            rc = mr_ttls_real.setsockopt(m->tcp, level, name, val, len);
        (void)pthread_mutex_unlock(&g_lock);
    } else {
        rc = mr_ttls_real.setsockopt(fd, level, name, val, len);
    }
    put_meta(m);
    return rc;
}

bool mr_ttls_is_conn(int fd)
{
    if (!is_meta(slot_get(fd)))
        return false;
    meta *m = get_meta(fd);
    if (m == NULL)
        return false;
    put_meta(m);
    return true;
}

bool mr_ttls_refuse_fastopen(const struct sockaddr *sa, socklen_t len)
{
    const char *name = NULL;
    const mr_ttls_entry *e = mr_ttls_match_outgoing(mr_ttls_active(), sa, len, &name);
    if (e == NULL)
        return false;
    mr_ttls_log(MR_TTLS_WARN, "refused TCP Fast Open to a TTLS endpoint (use connect())", "entry",
                e->key, (const char *)NULL);
    return true;
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
    int64_t end = now_ms() + ms;
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
                drive(c);
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
                    pump(c);
                }
            }
            if (!pending || now_ms() >= end)
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

mr_result mr_ttls_engine_init(mr_ttls_config *cfg, const mr_ttls_opts *opts)
{
    MR_ENSURE(mr_ttls_active() == NULL, MR_ERR_INTERNAL, "internal error: TTLS is active already");
    for (size_t i = 0; i < cfg->count; i++)
        MR_ENSURE(!cfg->entries[i].creds || cfg->entries[i].ctx != NULL, MR_ERR_INTERNAL,
                  "internal error: TTLS entry %s has no TLS context", cfg->entries[i].key);
    mr_ttls_libc_resolve();
    (void)pthread_once(&g_workers_once, workers_init);
    (void)pthread_once(&g_ereg_once, ereg_init);
    (void)pthread_once(&g_atfork_once, atfork_register);
    if (opts != NULL)
        g_opts = *opts;
    if (g_opts.handshake_timeout_ms == 0)
        g_opts.handshake_timeout_ms = 10000;
    atomic_store(&g_engine_pid, getpid());
    atomic_store_explicit(&g_active, cfg, memory_order_release);
    return MR_SUCCESS;
}

void mr_ttls_fork_prepare(void)
{
    (void)pthread_mutex_lock(&g_start_lock);
    for (int i = 0; i < WORKERS_MAX; i++)
        (void)pthread_mutex_lock(&g_workers[i].mu);
    (void)pthread_mutex_lock(&g_lock);
    for (int i = 0; i < STRIPES; i++)
        (void)pthread_mutex_lock(&g_ereg_lock[i]);
    mr_ttls_names_fork_prepare();
}

static void unlock_all(void)
{
    mr_ttls_names_fork_done();
    for (int i = STRIPES - 1; i >= 0; i--)
        (void)pthread_mutex_unlock(&g_ereg_lock[i]);
    (void)pthread_mutex_unlock(&g_lock);
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
    (void)pthread_mutex_lock(&g_lock);
    for (int i = 0; i < WORKERS_MAX; i++) {
        worker *w = &g_workers[i];
        if (!w->started)
            continue;
        for (conn *c = w->head; c != NULL; c = c->next) {
            int fds[3] = {c->tcp, c->pfd, c->adup};
            for (int k = 0; k < 3; k++) {
                if (fds[k] >= 0) {
                    (void)slot_set(fds[k], 0);
                    (void)mr_ttls_real.close(fds[k]);
                }
            }
            if (c->m != NULL)
                c->m->tcp = -1;
        }
        (void)slot_set(w->ep, 0);
        (void)slot_set(w->evfd, 0);
        (void)mr_ttls_real.close(w->ep);
        (void)mr_ttls_real.close(w->evfd);
        w->ep = w->evfd = -1;
        w->head = w->again = w->grave = NULL;
        w->n_hs = 0;
        w->started = false;
    }
    (void)pthread_mutex_unlock(&g_lock);
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
            teardown(w->head);
        while (w->grave != NULL) {
            conn *c = w->grave;
            w->grave = c->grave_next;
            conn_free(c);
        }
        w->again = NULL;
        close_internal(w->ep);
        close_internal(w->evfd);
        w->ep = w->evfd = -1;
        w->n_hs = 0;
        w->started = false;
    }
    g_next_worker = 0;
    mr_ttls_config *cfg = atomic_exchange(&g_active, NULL);
    mr_ttls_config_free(cfg);
    mr_free(cfg);
    (void)pthread_mutex_lock(&g_lock);
    for (int i = 0; i < CHUNKS; i++) {
        _Atomic(uintptr_t) *c = atomic_exchange(&g_slots[i], NULL);
        if (c != NULL)
            for (int k = 0; k < CHUNK; k++)
                if (is_meta(atomic_load(&c[k])))
                    meta_unref((meta *)atomic_load(&c[k]));
        void *raw = NULL;
        memcpy(&raw, &c, sizeof(raw)); /* the chunk without its _Atomic qualifier */
        mr_free(raw);
    }
    (void)pthread_mutex_unlock(&g_lock);
    for (int i = 0; i < CHUNKS; i++)
        mr_free(atomic_exchange(&g_ereg[i], NULL));
    mr_ttls_names_reset();
}
