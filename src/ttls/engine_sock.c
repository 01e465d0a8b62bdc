/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TTLS engine's side of the hooks on the application's descriptors (engine.c has the
 * design, engine_int.h what the parts share): connect() and accept() take a matching TCP
 * connection over and give the application the app end; close, dup, getsockname/getpeername
 * and socket options act on the app end as the application expects from a TCP socket. And the
 * epoll registrations of every fd, recorded so that a connect() swapping the app end in keeps
 * them.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "ttls/engine_int.h"
#include "ttls/ttls.h"

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

void mr_ttls_ereg_init(void) { (void)pthread_once(&g_ereg_once, ereg_init); }

void mr_ttls_ereg_lock_all(void)
{
    for (int i = 0; i < STRIPES; i++)
        (void)pthread_mutex_lock(&g_ereg_lock[i]);
}

void mr_ttls_ereg_unlock_all(void)
{
    for (int i = STRIPES - 1; i >= 0; i--)
        (void)pthread_mutex_unlock(&g_ereg_lock[i]);
}

void mr_ttls_ereg_reset(void)
{
    for (int i = 0; i < CHUNKS; i++)
        mr_free(atomic_exchange(&g_ereg[i], NULL));
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
    (void)pthread_mutex_lock(&mr_ttls_lock);
    int st = m->state, err = m->error;
    if (st == ST_FAILED)
        m->error = 0;
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    mr_ttls_meta_put(m);
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

/* The meta of an outgoing connection: peer sa, local address of fd, app end app. NULL when out
 * of memory. */
static meta *client_meta(int fd, int tcp, int app, const struct sockaddr *sa, socklen_t len)
{
    meta *m = mr_ttls_meta_new();
    if (m == NULL)
        return NULL;
    m->family = sa->sa_family;
    memcpy(&m->peer, sa, len < sizeof(m->peer) ? len : sizeof(m->peer));
    m->peer_len = len;
    m->local_len = sizeof(m->local);
    if (mr_ttls_real.getsockname(fd, (struct sockaddr *)&m->local, &m->local_len) != 0)
        m->local_len = 0;
    m->ino = mr_ttls_fd_ino(app);
    m->tcp = tcp;
    return m;
}

/* Unwritable until the handshake is done: the app end gets a tiny send buffer, filled with
 * junk that the engine discards (c->junk); c->sndbuf is what opened() restores. */
static void make_unwritable(conn *c, int app)
{
    int sb = 0, one = 1;
    socklen_t sl = sizeof(sb);
    if (mr_ttls_real.getsockopt(app, SOL_SOCKET, SO_SNDBUF, &sb, &sl) == 0)
        c->sndbuf = sb / 2; /* the kernel doubles what is set */
    (void)mr_ttls_real.setsockopt(app, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
    static const uint8_t junk[512];
    for (int i = 0; i < 256; i++) {
        ssize_t n = send(app, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        c->junk += (size_t)n;
    }
}

/* Marks c's descriptors as the engine's and puts the app end app at fd. On failure the marks
 * are undone and *err says why. */
static bool track_and_swap(int fd, const conn *c, int app, int *err)
{
    (void)pthread_mutex_lock(&mr_ttls_lock);
    bool tracked = mr_ttls_slot_set(c->tcp, SLOT_INTERNAL) &&
                   mr_ttls_slot_set(c->pfd, SLOT_INTERNAL) &&
                   mr_ttls_slot_set(c->adup, SLOT_INTERNAL);
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    if (tracked && swap_in(fd, app))
        return true;
    *err = tracked ? errno : EMFILE;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    (void)mr_ttls_slot_set(c->tcp, 0);
    (void)mr_ttls_slot_set(c->pfd, 0);
    (void)mr_ttls_slot_set(c->adup, 0);
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    return false;
}

/* fd is the app end of m now: records it in the table and hands c to a worker; a blocking
 * connect() (ret_errno 0) then waits for the handshake. Returns connect()'s answer. */
static int client_hand_over(int fd, meta *m, conn *c, int ret_errno)
{
    (void)pthread_mutex_lock(&mr_ttls_lock);
    m->refs += 2; /* the table's and ours */
    if (!mr_ttls_slot_set(fd, (uintptr_t)m))
        m->refs--;
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    if (!mr_ttls_conn_add(c)) { /* it released c, its descriptors and its meta reference */
        int err = errno;
        mr_ttls_meta_put(m);
        (void)mr_ttls_close(fd);
        errno = err;
        return -1;
    }
    int rc = -1, err = ret_errno;
    if (ret_errno == 0) {
        int st = mr_ttls_meta_wait(m, mr_ttls_engine_opts.connect_wait_ms);
        if (st == ST_FAILED) {
            (void)pthread_mutex_lock(&mr_ttls_lock);
            err = m->error != 0 ? m->error : ECONNREFUSED;
            m->error = 0; /* reported here, not again by SO_ERROR */
            (void)pthread_mutex_unlock(&mr_ttls_lock);
        } else {
            rc = 0;
        }
    }
    mr_ttls_meta_put(m);
    if (rc != 0)
        errno = err;
    return rc;
}

/* Undoes a client_start that failed before the swap; fd gets its file status flags fl back. */
static void client_undo(int fd, int fl, int tcp, const int sv[2], meta *m, conn *c)
{
    if (c != NULL) {
        if (c->adup >= 0)
            (void)mr_ttls_real.close(c->adup);
        mr_ttls_conn_free(c);
    }
    if (m != NULL)
        mr_ttls_meta_put(m);
    if (sv[0] >= 0)
        (void)mr_ttls_real.close(sv[0]);
    if (sv[1] >= 0)
        (void)mr_ttls_real.close(sv[1]);
    if (tcp >= 0) {
        (void)mr_ttls_real.fcntl(fd, F_SETFL, fl); /* shared with fd */
        (void)mr_ttls_real.close(tcp);
    }
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
    m = client_meta(fd, tcp, sv[0], sa, len);
    if (m == NULL)
        goto fail;
    c = mr_ttls_conn_new(e, m, tcp, sv[1], true, name);
    if (c == NULL)
        goto fail;
    c->phase = connected ? PH_HANDSHAKE : PH_CONNECTING;
    make_unwritable(c, sv[0]);
    c->adup = mr_ttls_real.fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
    if (c->adup < 0 || ((fl & O_NONBLOCK) == 0 && mr_ttls_real.fcntl(sv[0], F_SETFL, O_RDWR) != 0) ||
        ((fl & O_NONBLOCK) == 0 && mr_ttls_real.fcntl(tcp, F_SETFL, fl | O_NONBLOCK) != 0)) {
        err = errno;
        goto fail;
    }
    if (!track_and_swap(fd, c, sv[0], &err))
        goto fail;
    /* from here on fd is the app end: the TCP socket is the engine's */
    (void)mr_ttls_real.close(sv[0]);
    return client_hand_over(fd, m, c, ret_errno);

fail:
    client_undo(fd, fl, tcp, sv, m, c);
    errno = err;
    return -1;
}

int mr_ttls_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    const mr_ttls_config *cfg = mr_ttls_active();
    if (cfg == NULL || cfg->n_out == 0 || sa == NULL ||
        (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return mr_ttls_real.connect(fd, sa, len);
    meta *m = mr_ttls_meta_get(fd);
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

/* The addresses of an accepted connection. */
typedef struct endpoints {
    struct sockaddr_storage peer, local;
    socklen_t peer_len, local_len;
} endpoints;

/* The entry that takes the accepted connection s (by its local port), or NULL: not ours. Fills
 * ep's local address on the way. */
static const mr_ttls_entry *incoming_entry(const mr_ttls_config *cfg, int s, endpoints *ep)
{
    uint8_t ip[16];
    uint16_t port = 0;
    if ((ep->peer.ss_family == AF_INET || ep->peer.ss_family == AF_INET6) &&
        mr_ttls_real.getsockname(s, (struct sockaddr *)&ep->local, &ep->local_len) == 0 &&
        mr_ttls_sockaddr_ip((struct sockaddr *)&ep->local, ep->local_len, ip, &port) != 0)
        return mr_ttls_match_incoming(cfg, port);
    return NULL;
}

/* s becomes the engine's (non-blocking, close-on-exec) and sv the pair whose sv[0] the
 * application gets, with accept4's flags. False with errno set (sv may hold descriptors). */
static bool server_pair(int s, int flags, int sv[2])
{
    int sfl = mr_ttls_real.fcntl(s, F_GETFL);
    return sfl >= 0 && mr_ttls_real.fcntl(s, F_SETFL, sfl | O_NONBLOCK) == 0 &&
           mr_ttls_real.fcntl(s, F_SETFD, FD_CLOEXEC) == 0 &&
           socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0 &&
           ((flags & SOCK_NONBLOCK) != 0 || mr_ttls_real.fcntl(sv[0], F_SETFL, O_RDWR) == 0) &&
           ((flags & SOCK_CLOEXEC) != 0 || mr_ttls_real.fcntl(sv[0], F_SETFD, 0) == 0);
}

/* The meta of an incoming connection on s with app end app. NULL when out of memory. */
static meta *server_meta(const endpoints *ep, int s, int app)
{
    meta *m = mr_ttls_meta_new();
    if (m == NULL)
        return NULL;
    m->family = ep->peer.ss_family;
    m->peer = ep->peer;
    m->peer_len = ep->peer_len;
    m->local = ep->local;
    m->local_len = ep->local_len;
    m->ino = mr_ttls_fd_ino(app);
    m->tcp = s;
    return m;
}

/* Hands c (app end app, meta m) to a worker; if the listener's file status flags lfl say
 * blocking, waits for the handshake up to accept_wait_ms. Returns the app end, or -1 with errno
 * set (everything released). */
static int server_hand_over(int app, int lfl, meta *m, conn *c)
{
    if (!mr_ttls_conn_add(c)) {
        int err = errno;
        (void)pthread_mutex_lock(&mr_ttls_lock);
        (void)mr_ttls_slot_set(app, 0);
        m->refs -= 2;
        mr_ttls_meta_unref(m);
        (void)pthread_mutex_unlock(&mr_ttls_lock);
        (void)mr_ttls_real.close(app);
        errno = err;
        return -1;
    }
    if (lfl >= 0 && (lfl & O_NONBLOCK) == 0 &&
        mr_ttls_meta_wait(m, mr_ttls_engine_opts.accept_wait_ms) == ST_FAILED) {
        mr_ttls_meta_put(m);
        (void)mr_ttls_close(app);
        errno = ECONNABORTED;
        return -1;
    }
    mr_ttls_meta_put(m);
    return app;
}

/* Takes over the accepted TCP connection s of the listener fd for entry e: returns the app end,
 * or -1 with errno set (s closed). */
static int server_start(int fd, int s, int flags, const mr_ttls_entry *e, const endpoints *ep)
{
    int sv[2] = {-1, -1}, err = ENOMEM;
    meta *m = NULL;
    conn *c = NULL;
    int lfl = mr_ttls_real.fcntl(fd, F_GETFL);
    if (!server_pair(s, flags, sv)) {
        err = errno;
        goto fail;
    }
    m = server_meta(ep, s, sv[0]);
    if (m == NULL)
        goto fail;
    c = mr_ttls_conn_new(e, m, s, sv[1], false, NULL);
    if (c == NULL)
        goto fail;
    c->phase = PH_HANDSHAKE;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    bool tracked = mr_ttls_slot_set(s, SLOT_INTERNAL) && mr_ttls_slot_set(sv[1], SLOT_INTERNAL) &&
                   mr_ttls_slot_set(sv[0], (uintptr_t)m);
    if (tracked)
        m->refs += 2; /* the table's and ours */
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    if (!tracked) {
        err = EMFILE;
        goto fail;
    }
    return server_hand_over(sv[0], lfl, m, c);

fail:
    if (c != NULL)
        mr_ttls_conn_free(c);
    if (m != NULL)
        mr_ttls_meta_put(m);
    if (sv[0] >= 0)
        (void)mr_ttls_real.close(sv[0]);
    if (sv[1] >= 0)
        (void)mr_ttls_real.close(sv[1]);
    (void)mr_ttls_real.close(s);
    errno = err;
    return -1;
}

int mr_ttls_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags, bool four)
{
    const mr_ttls_config *cfg = mr_ttls_active();
    if (cfg == NULL || cfg->n_in == 0)
        return four ? mr_ttls_real.accept4(fd, sa, len, flags) : mr_ttls_real.accept(fd, sa, len);
    endpoints ep;
    ep.peer_len = sizeof(ep.peer);
    ep.local_len = sizeof(ep.local);
    int s = four ? mr_ttls_real.accept4(fd, (struct sockaddr *)&ep.peer, &ep.peer_len, flags)
                 : mr_ttls_real.accept(fd, (struct sockaddr *)&ep.peer, &ep.peer_len);
    if (s < 0)
        return s;
    const mr_ttls_entry *e = incoming_entry(cfg, s, &ep);
    if (e == NULL) {
        copy_addr(sa, len, &ep.peer, ep.peer_len);
        return s;
    }
    if (!e->creds) {
        (void)mr_ttls_real.close(s);
        return refuse(e, "refused a connection on a TTLS port", ECONNABORTED);
    }
    int app = server_start(fd, s, flags, e, &ep);
    if (app >= 0)
        copy_addr(sa, len, &ep.peer, ep.peer_len);
    return app;
}

/* ---- descriptors ---- */

int mr_ttls_close(int fd)
{
    uintptr_t v = mr_ttls_slot_get(fd);
    if (v == SLOT_INTERNAL) {
        errno = EBADF; /* not the application's */
        return -1;
    }
    if (v != 0) {
        (void)pthread_mutex_lock(&mr_ttls_lock);
        v = mr_ttls_slot_get(fd);
        if (mr_ttls_slot_is_meta(v)) {
            (void)mr_ttls_slot_set(fd, 0);
            mr_ttls_meta_unref((meta *)v);
        }
        (void)pthread_mutex_unlock(&mr_ttls_lock);
    }
    ereg_clear(fd);
    return mr_ttls_real.close(fd);
}

int mr_ttls_dup_done(int oldfd, int newfd)
{
    if (newfd < 0 || !mr_ttls_slot_is_meta(mr_ttls_slot_get(oldfd)))
        return newfd;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    uintptr_t v = mr_ttls_slot_get(oldfd), prev = mr_ttls_slot_get(newfd);
    if (mr_ttls_slot_is_meta(v) && mr_ttls_slot_set(newfd, v)) {
        ((meta *)v)->refs++;
        if (mr_ttls_slot_is_meta(prev))
            mr_ttls_meta_unref((meta *)prev);
    }
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    return newfd;
}

int mr_ttls_dup2(int oldfd, int newfd, int flags, bool three)
{
    if (mr_ttls_slot_get(newfd) == SLOT_INTERNAL && oldfd != newfd) {
        errno = EBUSY;
        return -1;
    }
    int r = three ? mr_ttls_real.dup3(oldfd, newfd, flags) : mr_ttls_real.dup2(oldfd, newfd);
    if (r < 0 || oldfd == newfd)
        return r;
    ereg_clear(newfd);
    if (mr_ttls_slot_get(oldfd) == 0 && mr_ttls_slot_get(newfd) == 0)
        return r;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    uintptr_t v = mr_ttls_slot_get(oldfd), prev = mr_ttls_slot_get(newfd);
    if (mr_ttls_slot_is_meta(prev)) {
        (void)mr_ttls_slot_set(newfd, 0);
        mr_ttls_meta_unref((meta *)prev);
    }
    if (mr_ttls_slot_is_meta(v) && mr_ttls_slot_set(newfd, v))
        ((meta *)v)->refs++;
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    return r;
}

int mr_ttls_getname(int fd, struct sockaddr *sa, socklen_t *len, bool peer)
{
    meta *m = mr_ttls_meta_get(fd);
    if (m == NULL)
        return peer ? mr_ttls_real.getpeername(fd, sa, len) : mr_ttls_real.getsockname(fd, sa, len);
    int rc = 0;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    bool connected = m->state == ST_OPEN;
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    if (len == NULL || sa == NULL) {
        errno = EFAULT;
        rc = -1;
    } else if (peer && !connected) {
        errno = ENOTCONN;
        rc = -1;
    } else {
        copy_addr(sa, len, peer ? &m->peer : &m->local, peer ? m->peer_len : m->local_len);
    }
    mr_ttls_meta_put(m);
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
    meta *m = mr_ttls_meta_get(fd);
    if (m == NULL)
        return mr_ttls_real.getsockopt(fd, level, name, val, len);
    int rc = 0;
    if (level == SOL_SOCKET && name == SO_ERROR) {
        (void)pthread_mutex_lock(&mr_ttls_lock);
        int e = m->state == ST_PENDING ? 0 : m->error;
        if (m->state != ST_PENDING)
            m->error = 0;
        (void)pthread_mutex_unlock(&mr_ttls_lock);
        rc = put_int(val, len, e);
    } else if (level == SOL_SOCKET && name == SO_DOMAIN) {
        rc = put_int(val, len, m->family);
    } else if (level == SOL_SOCKET && name == SO_PROTOCOL) {
        rc = put_int(val, len, IPPROTO_TCP);
    } else if (level == SOL_SOCKET && name == SO_ACCEPTCONN) {
        rc = put_int(val, len, 0);
    } else if (tcp_option(level, name)) {
        (void)pthread_mutex_lock(&mr_ttls_lock); /* the engine closes m->tcp only under mr_ttls_lock */
        if (m->tcp >= 0) {
            rc = mr_ttls_real.getsockopt(m->tcp, level, name, val, len);
        } else {
            errno = ENOTCONN;
            rc = -1;
        }
        (void)pthread_mutex_unlock(&mr_ttls_lock);
    } else {
        rc = mr_ttls_real.getsockopt(fd, level, name, val, len);
    }
    mr_ttls_meta_put(m);
    return rc;
}

int mr_ttls_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    meta *m = mr_ttls_meta_get(fd);
    if (m == NULL)
        return mr_ttls_real.setsockopt(fd, level, name, val, len);
    int rc = 0;
    if (tcp_option(level, name)) {
        (void)pthread_mutex_lock(&mr_ttls_lock);
        if (m->tcp >= 0)
            rc = mr_ttls_real.setsockopt(m->tcp, level, name, val, len);
        (void)pthread_mutex_unlock(&mr_ttls_lock);
    } else {
        rc = mr_ttls_real.setsockopt(fd, level, name, val, len);
    }
    mr_ttls_meta_put(m);
    return rc;
}

bool mr_ttls_is_conn(int fd)
{
    if (!mr_ttls_slot_is_meta(mr_ttls_slot_get(fd)))
        return false;
    meta *m = mr_ttls_meta_get(fd);
    if (m == NULL)
        return false;
    mr_ttls_meta_put(m);
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
