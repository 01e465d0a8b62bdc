/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transparent TLS (TTLS) for any dynamically linked marble: libmarble-ttls.so, preloaded by
 * marblerun-premain when the activation answer carries MARBLE_TTLS_CONFIG
 * (spec/marble-cli-k8s.md §3; design in docs/ttls.md).
 *
 * Design: an in-process proxy. A connect() to a configured Addr:Port, or an accept() on a
 * configured port, hands the application one end of an AF_UNIX socketpair instead of the TCP
 * socket; the library's engine thread runs TLS (OpenSSL) on the real TCP socket and moves
 * plaintext between it and the other end. Every byte-level call of the application (read,
 * recv, readv, recvmsg, sendfile, splice, poll, select, epoll, fcntl, dup, fork) therefore
 * works on a real kernel socket with the kernel's semantics; only the calls that reveal what
 * kind of socket it is, or that create and name connections, are interposed.
 *
 *  config.c   MARBLE_TTLS_CONFIG (JSON) -> mr_ttls_config; entry keys; MARBLE_TTLS_ENDPOINTS
 *             (the non-secret list handed to child processes); the policy log lines
 *  match.c    which entry a connect()/accept() belongs to; names remembered from getaddrinfo
 *  tlsctx.c   one SSL_CTX per entry; peer verification incl. the marble-type extension
 *  engine.c   the descriptor table, the connections and the engine threads
 *  preload.c  the interposed libc functions, the constructor, exec and exit handling
 *  libc.c     the real libc functions behind the hooks (dlsym(RTLD_NEXT))
 *  log.c      log lines on stderr ("[TTLS] ...", console or EDG_LOG_FORMAT=json)
 *
 * Ownership: a mr_ttls_config owns its entries, their strings (clikey in MR_BUF_SECRET memory)
 * and their SSL_CTX; mr_ttls_config_free releases everything (NULL-safe, zeroed-safe).
 * Errors: MR_ERR_USAGE for a configuration that is not acceptable, MR_ERR_INTERNAL for
 * allocation or OpenSSL failures. No message contains key material.
 */
#ifndef MR_TTLS_TTLS_H
#define MR_TTLS_TTLS_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/result.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct x509_st X509;

/* ---- configuration (config.c) ---- */

#define MR_TTLS_CONFIG_VAR "MARBLE_TTLS_CONFIG"
#define MR_TTLS_ENDPOINTS_VAR "MARBLE_TTLS_ENDPOINTS"
#define MR_TTLS_CONFIG_MAX ((size_t)8 << 20) /* bytes of MARBLE_TTLS_CONFIG accepted */
#define MR_TTLS_ENTRIES_MAX 512              /* entries per direction */
#define MR_TTLS_TYPES_MAX 64                 /* allowed marble types per entry */
#define MR_TTLS_KEY_MAX 300                  /* "addr:port" */
#define MR_TTLS_HOST_MAX 256

typedef enum mr_ttls_dir { MR_TTLS_OUTGOING = 0, MR_TTLS_INCOMING = 1 } mr_ttls_dir;

typedef struct mr_ttls_entry {
    mr_ttls_dir dir;
    char key[MR_TTLS_KEY_MAX];   /* as in the config: "addr:port" or "*:port" */
    char host[MR_TTLS_HOST_MAX]; /* Outgoing: the address without brackets; Incoming: "" */
    int ip_family;               /* AF_INET / AF_INET6 when host is an IP literal, else 0 */
    uint8_t ip[16];
    uint16_t port;
    bool creds;                  /* false: endpoint known only (refused, see engine.c) */
    mr_buf cacrt;                /* PEM: peer trust anchors */
    mr_buf clicrt;               /* PEM: own certificate (chain) */
    mr_buf clikey;               /* PEM: own private key (MR_BUF_SECRET) */
    bool client_auth;            /* Incoming: require and verify a client certificate */
    char **types;                /* allowed peer marble types (empty: any marble) */
    size_t n_types;
    SSL_CTX *ctx;                /* built by mr_ttls_entry_tls */
} mr_ttls_entry;

typedef struct mr_ttls_config {
    mr_ttls_entry *entries;
    size_t count;
    size_t n_in, n_out, n_out_names; /* n_out_names: Outgoing entries whose host is a name */
    uint8_t out_ports[65536 / 8];    /* bitmap of Outgoing ports (the connect() fast path) */
    uint8_t in_ports[65536 / 8];
} mr_ttls_config;

/* Parses MARBLE_TTLS_CONFIG: {"tls":{"Incoming":{"*:<port>":{...}},"Outgoing":{"<addr>:<port>":
 * {...}}}} with entries {"cacrt","clicrt","clikey": PEM strings, "clientAuth": bool (Incoming;
 * absent = true), "allowedTypes": [string] (MarbleRun-C extension)}. Unknown members are
 * ignored; a duplicate entry key, a missing PEM, a bad key or an empty config fail. */
MR_RESULT mr_ttls_config_parse(const char *json, size_t len, mr_ttls_config *out);
/* Parses "in=*:8443 out=db:5432 ..." (MARBLE_TTLS_ENDPOINTS) into entries without
 * credentials. */
MR_RESULT mr_ttls_config_parse_endpoints(const char *text, mr_ttls_config *out);
/* Writes the MARBLE_TTLS_ENDPOINTS value of a config (NUL-terminated). */
MR_RESULT mr_ttls_config_endpoints(const mr_ttls_config *c, mr_buf *out);
/* One key: Outgoing "host:port", "[v6]:port" or "v6:port" (split at the last ':'); Incoming
 * "<anything>:port". Port 1..65535. Fills dir, key, host, ip_family, ip, port. */
MR_RESULT mr_ttls_parse_key(const char *key, size_t len, mr_ttls_dir dir, mr_ttls_entry *e);
/* The effective policy as text lines (no key material), '\n'-separated, NUL-terminated:
 * "TTLS config" / "  Incoming" / "    *:8443 client certificate required, marble types: a, b"
 * / "  Outgoing" / "    db:5432 server verified (SNI and name check db)". */
MR_RESULT mr_ttls_policy_lines(const mr_ttls_config *c, mr_buf *out);
void mr_ttls_config_free(mr_ttls_config *c);

/* ---- matching (match.c) ---- */

/* Normalises an AF_INET / AF_INET6 address (IPv4-mapped IPv6 becomes AF_INET). Returns the
 * family (0 for anything else) and fills ip (4 or 16 bytes) and port. */
int mr_ttls_sockaddr_ip(const struct sockaddr *sa, socklen_t len, uint8_t ip[16], uint16_t *port);
/* The Outgoing entry for a connect() target: an entry whose host is a name the application
 * resolved to this address through getaddrinfo (preferred; *name = that host), else an entry
 * with this IP literal (*name = NULL). NULL when none. */
const mr_ttls_entry *mr_ttls_match_outgoing(const mr_ttls_config *c, const struct sockaddr *sa,
                                            socklen_t len, const char **name);
/* The Incoming entry for a local port, or NULL. */
const mr_ttls_entry *mr_ttls_match_incoming(const mr_ttls_config *c, uint16_t port);
/* Remembers the addresses getaddrinfo gave for `node` when node names an Outgoing host
 * (case-insensitive). Thread-safe; bounded (oldest forgotten first). */
void mr_ttls_names_record(const mr_ttls_config *c, const char *node, const struct addrinfo *res);
void mr_ttls_names_reset(void);
/* The resolver asked for an entry's name when nothing else identifies a connect() target
 * (preload.c sets the real getaddrinfo; NULL: never). */
typedef int (*mr_ttls_resolver)(const char *, const char *, const struct addrinfo *,
                                struct addrinfo **);
void mr_ttls_names_set_resolver(mr_ttls_resolver fn);
void mr_ttls_names_fork_prepare(void);
void mr_ttls_names_fork_done(void);

/* ---- TLS (tlsctx.c) ---- */

#define MR_TTLS_MARBLE_TYPE_OID "1.3.9903.2.1"

/* Builds e->ctx from the entry's PEMs: TLS 1.2..1.3, own certificate and key, the peer trust
 * anchors (partial chains allowed: an anchor need not be self-signed), peer verification
 * (Outgoing always, Incoming when client_auth) and the marble-type check. */
MR_RESULT mr_ttls_entry_tls(mr_ttls_entry *e);
/* The marble type carried by a certificate (extension 1.3.9903.2.1, raw bytes), NUL-terminated
 * into out; false when absent or not printable. */
bool mr_ttls_cert_marble_type(X509 *cert, char *out, size_t cap);
/* Whether the peer type may connect under entry e (always when e allows any type). */
bool mr_ttls_type_allowed(const mr_ttls_entry *e, const char *type);
/* A new SSL for one connection on fd: client with SNI and host check when name != NULL, or
 * server. `owner` is returned by mr_ttls_ssl_owner (for the callbacks). */
SSL *mr_ttls_ssl_new(const mr_ttls_entry *e, int fd, bool client, const char *name, void *owner);
void *mr_ttls_ssl_owner(const SSL *ssl);
/* Set by the TLS 1.3 client when the server sent a session ticket (it accepted our certificate). */
void mr_ttls_conn_confirmed(void *owner);
/* The reason a handshake failed, for the log (OpenSSL's queue and the verify result). */
void mr_ttls_ssl_reason(SSL *ssl, int ret, char *out, size_t cap);

/* ---- engine (engine.c) ---- */

typedef struct mr_ttls_opts {
    unsigned handshake_timeout_ms; /* a handshake not done by then fails (ETIMEDOUT) */
    unsigned accept_wait_ms;       /* a blocking accept() waits this long for the handshake */
    unsigned connect_wait_ms;      /* a blocking connect() waits this long for the handshake */
    unsigned threads;              /* engine threads (connections are spread round-robin) */
} mr_ttls_opts;

/* The real libc functions (libc.c: dlsym(RTLD_NEXT)). */
typedef struct mr_ttls_libc {
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*close)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
} mr_ttls_libc;
extern mr_ttls_libc mr_ttls_real;
/* Fills mr_ttls_real (idempotent, thread-safe). */
void mr_ttls_libc_resolve(void);

/* Takes ownership of cfg (a heap object from mr_alloc, freed by mr_ttls_engine_reset) and makes
 * it the process's policy. Entries with credentials must have their SSL_CTX built. */
MR_RESULT mr_ttls_engine_init(mr_ttls_config *cfg, const mr_ttls_opts *opts);
/* The active policy, or NULL (every hook passes through). */
const mr_ttls_config *mr_ttls_active(void);
/* Stops the engine threads, closes every connection and frees the policy (tests). */
void mr_ttls_engine_reset(void);
/* At process exit: pumps every connection until what the application wrote is sent and
 * close_notify went out, for at most ms (no-op in a vfork child or before any connection). */
void mr_ttls_flush_all(unsigned ms);
/* Fork handlers (registered once by mr_ttls_engine_init). */
void mr_ttls_fork_prepare(void);
void mr_ttls_fork_parent(void);
void mr_ttls_fork_child(void);

/* Hooks with the semantics of the libc call they replace (return value and errno). */
int mr_ttls_connect(int fd, const struct sockaddr *sa, socklen_t len);
int mr_ttls_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags, bool four);
int mr_ttls_close(int fd);
int mr_ttls_dup_done(int oldfd, int newfd);     /* after a successful dup/F_DUPFD: newfd */
int mr_ttls_dup2(int oldfd, int newfd, int flags, bool three);
int mr_ttls_getname(int fd, struct sockaddr *sa, socklen_t *len, bool peer);
int mr_ttls_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int mr_ttls_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
void mr_ttls_epoll_ctl_done(int epfd, int op, int fd, const struct epoll_event *ev);
/* Whether fd is an application end of a TTLS connection (recvfrom/sendto address handling). */
bool mr_ttls_is_conn(int fd);
/* sendto/sendmsg with MSG_FASTOPEN to a configured address would bypass connect(): refused. */
bool mr_ttls_refuse_fastopen(const struct sockaddr *sa, socklen_t len);

/* ---- log (log.c) ---- */

typedef enum mr_ttls_level {
    MR_TTLS_DEBUG = 0,
    MR_TTLS_INFO,
    MR_TTLS_WARN,
    MR_TTLS_ERROR,
} mr_ttls_level;

/* Reads EDG_LOG_FORMAT (json) and EDG_DEBUG_LOGGING once. */
void mr_ttls_log_init(void);
/* One line "[TTLS] msg" with string fields given as key, value pairs ending with NULL. */
void mr_ttls_log(mr_ttls_level level, const char *msg, ...);
/* Test hook: log lines go to fd (default 2); -1 = nowhere. */
void mr_ttls_log_set_fd(int fd);

#endif
