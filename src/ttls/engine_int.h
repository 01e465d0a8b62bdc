/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the parts of the TTLS engine share (see engine.c for the design):
 *   engine.c       descriptor table and metas, workers and their connections, life cycle
 *   engine_pump.c  a connection's way through connect, handshake and confirmation, and the
 *                  pump that moves bytes between the app end and TLS
 *   engine_sock.c  the hooks on the application's descriptors (connect, accept, close, dup,
 *                  names, socket options) and the epoll registrations a swapped connect() keeps
 * Private to src/ttls. Locks, in the order mr_ttls_fork_prepare takes them and never the other
 * way round: the worker start lock, a worker's mutex, mr_ttls_lock (table and metas), an
 * epoll-registration stripe.
 */
#ifndef MR_TTLS_ENGINE_INT_H
#define MR_TTLS_ENGINE_INT_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ttls/ttls.h"

#define BUF_CAP 16384 /* each direction's buffer of a connection */

/* The descriptor table: for every fd number 0, SLOT_INTERNAL or the meta of a TTLS connection
 * whose app end it is, in chunks of CHUNK slots allocated on first use. */
#define CHUNK 1024
#define CHUNKS 1024 /* fds below 1M are tracked; beyond, TTLS connections are refused */
#define SLOT_INTERNAL ((uintptr_t)1)

/* The shared record of a TTLS connection (its app end's slot points to it). */
typedef struct meta {
    int refs; /* mr_ttls_lock */
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

enum { PH_CONNECTING = 0, PH_HANDSHAKE, PH_CONFIRM, PH_OPEN };

typedef struct worker worker;

/* A connection: owned by its worker (under the worker's mutex). */
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

/* ---- engine.c ---- */

extern pthread_mutex_t mr_ttls_lock;     /* the descriptor table and every meta */
extern mr_ttls_opts mr_ttls_engine_opts; /* set by mr_ttls_engine_init */

static inline bool mr_ttls_slot_is_meta(uintptr_t v) { return v > SLOT_INTERNAL; }
/* fd's slot: 0 (not ours), SLOT_INTERNAL or a meta *; one atomic load, no lock */
uintptr_t mr_ttls_slot_get(int fd);
/* Under mr_ttls_lock. False when fd cannot be tracked. */
bool mr_ttls_slot_set(int fd, uintptr_t v);

/* A new meta with one reference, or NULL (out of memory). */
meta *mr_ttls_meta_new(void);
/* Under mr_ttls_lock: drops a reference, freeing m with the last one. NULL is ignored. */
void mr_ttls_meta_unref(meta *m);
/* The meta of fd (a reference the caller releases with mr_ttls_meta_put), or NULL. A stale
 * entry (the fd number now names another file) is dropped. */
meta *mr_ttls_meta_get(int fd);
void mr_ttls_meta_put(meta *m);
/* Waits until the handshake of m is decided or ms passed; returns the state. */
int mr_ttls_meta_wait(meta *m, unsigned ms);
ino_t mr_ttls_fd_ino(int fd);
int64_t mr_ttls_now_ms(void);
/* Forgets an engine descriptor in the table and closes it; fd < 0 is ignored. */
void mr_ttls_close_internal(int fd);

/* A connection over tcp (the engine's TCP socket) and pfd (the engine's end of the pair) with
 * its SSL and buffers; takes neither descriptor nor m's reference on failure (NULL). */
conn *mr_ttls_conn_new(const mr_ttls_entry *e, meta *m, int tcp, int pfd, bool client,
                       const char *name);
/* Hands c to a worker (started on first use). False on failure (errno set): c, its
 * descriptors and its meta reference are released then. */
bool mr_ttls_conn_add(conn *c);
/* Worker's mutex held, for these three: */
void mr_ttls_conn_leave_hs(conn *c); /* c's handshake is over (counted in its worker) */
void mr_ttls_conn_again(conn *c);    /* drive c again after the other connections had a turn */
/* Releases everything of a connection; the struct itself is freed after the current batch. */
void mr_ttls_conn_teardown(conn *c);
/* Frees the struct, its SSL and buffers (not its descriptors or meta). NULL is ignored. */
void mr_ttls_conn_free(conn *c);

/* ---- engine_pump.c (worker's mutex held) ---- */

/* Takes c as far as its descriptors' readiness allows: connect, handshake, confirm, pump. */
void mr_ttls_conn_drive(conn *c);
/* Moves bytes both ways for an open connection, and ends it when both directions are done. */
void mr_ttls_conn_pump(conn *c);
/* Fails (or, for a TLS 1.3 confirmation, opens) the handshakes over their deadline. */
void mr_ttls_worker_deadlines(worker *w);

/* ---- engine_sock.c ---- */

void mr_ttls_ereg_init(void); /* once: the stripe locks */
/* fork: every stripe lock, taken after mr_ttls_lock, released in reverse order */
void mr_ttls_ereg_lock_all(void);
void mr_ttls_ereg_unlock_all(void);
void mr_ttls_ereg_reset(void); /* frees the registrations (mr_ttls_engine_reset) */

#endif
