/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TTLS hooks and engine in one process: preload.c is linked into this test, so its own
 * connect/accept/close/dup/fcntl/getsockopt/epoll_ctl are the library's. The process is client
 * and server of one TTLS port (Incoming and Outgoing entries name it) and checks that the
 * application sees plain-socket behaviour: blocking and non-blocking connect (epoll registered
 * before connect), data both ways, half-close, names, options, SO_ERROR, dup/dup2/fcntl
 * copies, a stale table entry, internal descriptors, fork, failures mapped to ECONNREFUSED /
 * ECONNABORTED, and a process without credentials refusing the endpoints.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ttls_test_util.h"

static tpki g_pki;
static tleaf g_leaf;
static int g_ls = -1, g_raw_ls = -1;
static uint16_t g_port, g_raw_port, g_dead_port;

static uint16_t listener(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*fd >= 0);
    int one = 1;
    assert_int_equal(setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(*fd, 64), 0);
    socklen_t l = sizeof(a);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &l), 0);
    return ntohs(a.sin_port);
}

static void start_engine(void)
{
    mr_buf cfg;
    char key[64];
    mr_buf_init(&cfg, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&cfg, "{\"tls\":{\"Incoming\":{"));
    (void)snprintf(key, sizeof(key), "*:%u", g_port);
    tcfg_entry(&cfg, true, key, &g_pki.ca_pem, &g_leaf, 1, "both");
    MR_ASSERT_OK(mr_buf_append_str(&cfg, "},\"Outgoing\":{"));
    const uint16_t out[] = {g_port, g_raw_port, g_dead_port};
    for (size_t i = 0; i < MR_ARRAY_LEN(out); i++) {
        (void)snprintf(key, sizeof(key), "127.0.0.1:%u", out[i]);
        tcfg_entry(&cfg, i == 0, key, &g_pki.ca_pem, &g_leaf, -1, "both");
    }
    MR_ASSERT_OK(mr_buf_append_str(&cfg, "}}}"));
    mr_ttls_config *c = mr_calloc(1, sizeof(*c));
    assert_non_null(c);
    MR_ASSERT_OK(mr_ttls_config_parse((const char *)cfg.data, cfg.len, c));
    for (size_t i = 0; i < c->count; i++)
        MR_ASSERT_OK(mr_ttls_entry_tls(&c->entries[i]));
    mr_ttls_opts o = {.handshake_timeout_ms = 3000, .accept_wait_ms = 1000,
                      .connect_wait_ms = 3000, .threads = 2};
    MR_ASSERT_OK(mr_ttls_engine_init(c, &o));
    mr_buf_free(&cfg);
}

static int setup(void **state)
{
    (void)state;
    mr_ttls_log_set_fd(-1);
    tpki_new(&g_pki);
    tleaf_new(&g_pki, "both", &g_leaf);
    g_port = listener(&g_ls);
    g_raw_port = listener(&g_raw_ls);
    int d = -1;
    g_dead_port = listener(&d);
    close(d); /* nothing listens there any more */
    start_engine();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mr_ttls_engine_reset();
    close(g_ls);
    close(g_raw_ls);
    tleaf_free(&g_leaf);
    tpki_free(&g_pki);
    return 0;
}

static struct sockaddr_in addr(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return a;
}

typedef struct acc {
    int ls, fd, err;
    struct sockaddr_in peer;
} acc;

static void *acceptor(void *arg)
{
    acc *a = arg;
    socklen_t l = sizeof(a->peer);
    a->fd = accept(a->ls, (struct sockaddr *)&a->peer, &l);
    a->err = errno;
    return NULL;
}

/* A connected pair through TTLS: *c the client end, *s the server end. */
static void pair(int *c, int *s, bool nonblock)
{
    acc a = {.ls = g_ls, .fd = -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, acceptor, &a), 0);
    *c = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    struct sockaddr_in to = addr(g_port);
    int r = connect(*c, (struct sockaddr *)&to, sizeof(to));
    if (nonblock) {
        assert_int_equal(r, -1);
        assert_int_equal(errno, EINPROGRESS);
        struct pollfd p = {.fd = *c, .events = POLLOUT};
        assert_int_equal(poll(&p, 1, 5000), 1);
        int err = -1;
        socklen_t l = sizeof(err);
        assert_int_equal(getsockopt(*c, SOL_SOCKET, SO_ERROR, &err, &l), 0);
        assert_int_equal(err, 0);
        int fl = fcntl(*c, F_GETFL);
        assert_int_equal(fcntl(*c, F_SETFL, fl & ~O_NONBLOCK), 0);
    } else {
        assert_int_equal(r, 0);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(a.fd >= 0);
    *s = a.fd;
}

static void xwrite(int fd, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(write(fd, s, n), (ssize_t)n);
}

static void xread(int fd, const char *want)
{
    size_t n = strlen(want), got = 0;
    char buf[256];
    assert_true(n < sizeof(buf));
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        assert_true(k > 0);
        got += (size_t)k;
    }
    assert_memory_equal(buf, want, n);
}

static void test_blocking_roundtrip(void **state)
{
    (void)state;
    int c, s;
    pair(&c, &s, false);
    xwrite(c, "hello server");
    xread(s, "hello server");
    xwrite(s, "hello client");
    xread(c, "hello client");
    /* names and options as on the TCP socket */
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    assert_int_equal(getpeername(c, (struct sockaddr *)&a, &l), 0);
    assert_int_equal(a.sin_family, AF_INET);
    assert_int_equal(ntohs(a.sin_port), g_port);
    l = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
    assert_int_equal(ntohs(a.sin_port), g_port);
    int v = 0;
    l = sizeof(v);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_DOMAIN, &v, &l), 0);
    assert_int_equal(v, AF_INET);
    assert_int_equal(getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &l), 0);
    assert_int_equal(v, IPPROTO_TCP);
    v = 1;
    assert_int_equal(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), 0);
    v = 0;
    assert_int_equal(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &l), 0);
    assert_int_equal(v, 1);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &l), 0);
    assert_int_equal(v, 0);
    /* a second connect() on it */
    struct sockaddr_in to = addr(g_port);
    assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, EISCONN);
    /* half-close: the server reads EOF, answers, the client still reads */
    assert_int_equal(shutdown(c, SHUT_WR), 0);
    char b;
    assert_int_equal(read(s, &b, 1), 0);
    xwrite(s, "after half-close");
    xread(c, "after half-close");
    assert_int_equal(close(s), 0);
    assert_int_equal(read(c, &b, 1), 0);
    assert_int_equal(close(c), 0);
}

static void test_nonblocking_connect_keeps_epoll(void **state)
{
    (void)state;
    acc a = {.ls = g_ls, .fd = -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, acceptor, &a), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = 4242};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev), 0); /* before connect, as nginx does */
    struct sockaddr_in to = addr(g_port);
    assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, EINPROGRESS);
    /* still not connected: writes would block, as on a connecting TCP socket */
    char b = 'x';
    ssize_t w = write(c, &b, 1);
    assert_true(w == 1 || (w == -1 && errno == EAGAIN)); /* 1 only if it already finished */
    struct epoll_event got = {0};
    int n = 0;
    for (int i = 0; i < 50 && n == 0; i++) {
        n = epoll_wait(ep, &got, 1, 100);
        if (n == 1 && (got.events & EPOLLOUT) == 0)
            n = 0;
    }
    assert_int_equal(n, 1);
    assert_int_equal(got.data.u64, 4242);
    int err = -1;
    socklen_t l = sizeof(err);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l), 0);
    assert_int_equal(err, 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (w != 1)
        xwrite(c, "x");
    xread(a.fd, "x");
    xwrite(a.fd, "readable");
    n = 0;
    for (int i = 0; i < 50 && n == 0; i++) {
        n = epoll_wait(ep, &got, 1, 100);
        if (n == 1 && (got.events & EPOLLIN) == 0)
            n = 0;
    }
    assert_int_equal(n, 1);
    xread(c, "readable");
    char more;
    assert_int_equal(read(c, &more, 1), -1);
    assert_int_equal(errno, EAGAIN);
    close(ep);
    close(c);
    close(a.fd);
}

static void *plain_server(void *arg)
{
    (void)arg;
    int s = accept(g_raw_ls, NULL, NULL); /* not an Incoming port: plain */
    if (s >= 0) {
        static const char msg[] = "HTTP/1.0 400 not TLS\r\n\r\n";
        ssize_t w = write(s, msg, sizeof(msg) - 1);
        (void)w;
        close(s);
    }
    return NULL;
}

static void test_failures_map_to_errno(void **state)
{
    (void)state;
    /* TCP refused: exactly the plain error */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = addr(g_dead_port);
    assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(c);
    /* a server that does not speak TLS: the handshake fails, connect() says ECONNREFUSED */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, plain_server, NULL), 0);
    c = socket(AF_INET, SOCK_STREAM, 0);
    to = addr(g_raw_port);
    assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(c);
    /* the same, non-blocking: writable with SO_ERROR = ECONNREFUSED */
    assert_int_equal(pthread_create(&t, NULL, plain_server, NULL), 0);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, EINPROGRESS);
    struct pollfd p = {.fd = c, .events = POLLOUT};
    assert_int_equal(poll(&p, 1, 5000), 1);
    int err = 0;
    socklen_t l = sizeof(err);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l), 0);
    assert_int_equal(err, ECONNREFUSED);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l), 0);
    assert_int_equal(err, 0); /* reported once, as the kernel does */
    assert_int_equal(pthread_join(t, NULL), 0);
    struct sockaddr_in a;
    l = sizeof(a);
    assert_int_equal(getpeername(c, (struct sockaddr *)&a, &l), -1);
    assert_int_equal(errno, ENOTCONN);
    close(c);
    /* a client that is not TLS, on the TTLS port, with a blocking listener: ECONNABORTED */
    acc acc1 = {.ls = g_ls, .fd = -1};
    assert_int_equal(pthread_create(&t, NULL, acceptor, &acc1), 0);
    int raw = socket(AF_INET, SOCK_STREAM, 0);
    to = addr(g_port);
    int rc;
    do { /* the plain syscall, past the library: a client that does not speak TLS */
        rc = (int)syscall(SYS_connect, raw, (struct sockaddr *)&to, sizeof(to));
    } while (rc != 0 && errno == EINTR);
    assert_int_equal(rc, 0);
    xwrite(raw, "GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(acc1.fd, -1);
    assert_int_equal(acc1.err, ECONNABORTED);
    close(raw);
}

static void test_descriptors(void **state)
{
    (void)state;
    int c, s;
    pair(&c, &s, true);
    int d1 = dup(c);
    int d2 = fcntl(c, F_DUPFD_CLOEXEC, 0);
    int d3 = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(dup2(c, d3), d3);
    int d4 = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(dup3(c, d4, O_CLOEXEC), d4);
    const int copies[] = {d1, d2, d3, d4};
    for (size_t i = 0; i < MR_ARRAY_LEN(copies); i++) {
        struct sockaddr_in a;
        socklen_t l = sizeof(a);
        assert_int_equal(getpeername(copies[i], (struct sockaddr *)&a, &l), 0);
        assert_int_equal(a.sin_family, AF_INET);
        xwrite(copies[i], "dup");
        xread(s, "dup");
    }
    assert_int_equal(close(c), 0);
    for (size_t i = 0; i < MR_ARRAY_LEN(copies); i++)
        assert_int_equal(close(copies[i]), 0);
    char b;
    assert_int_equal(read(s, &b, 1), 0); /* the last copy closed: EOF */
    close(s);
    /* a descriptor closed behind the library's back: its number's entry is not trusted */
    pair(&c, &s, false);
    assert_int_equal(syscall(SYS_close, c), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(sv[0], c); /* the lowest free number: the old one */
    struct sockaddr_storage ss;
    socklen_t l = sizeof(ss);
    assert_int_equal(getsockname(sv[0], (struct sockaddr *)&ss, &l), 0);
    assert_int_equal(ss.ss_family, AF_UNIX);
    close(sv[0]);
    close(sv[1]);
    close(s);
    /* the engine's own descriptors cannot be closed by the application */
    int refused = 0;
    for (int fd = 3; fd < 1024; fd++) {
        char link[64], target[128];
        (void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, "anon_inode:[eventpoll]") == 0 || strcmp(target, "anon_inode:[eventfd]") == 0) {
            assert_int_equal(close(fd), -1);
            assert_int_equal(errno, EBADF);
            refused++;
        }
    }
    assert_true(refused >= 2);
}

static void test_fork(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child accepts on the inherited listener with an engine of its own */
        int s = accept(g_ls, NULL, NULL);
        char buf[4] = {0};
        ssize_t n = s >= 0 ? read(s, buf, 4) : -1;
        ssize_t w = n == 4 && memcmp(buf, "ping", 4) == 0 ? write(s, "pong", 4) : -1;
        _exit(w == 4 ? 0 : 1);
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = addr(g_port);
    assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), 0);
    xwrite(c, "ping");
    xread(c, "pong");
    int st = -1;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(c);
    /* and an established connection inherited by a child keeps working through the parent */
    int s;
    pair(&c, &s, false);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ssize_t w = write(c, "from child", 10);
        _exit(w == 10 ? 0 : 1);
    }
    xread(s, "from child");
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(c);
    close(s);
}

static void test_process_without_credentials_refuses(void **state)
{
    (void)state;
    mr_ttls_engine_reset();
    char eps[96];
    (void)snprintf(eps, sizeof(eps), "in=*:%u out=127.0.0.1:%u", g_port, g_port);
    mr_ttls_config *c = mr_calloc(1, sizeof(*c));
    MR_ASSERT_OK(mr_ttls_config_parse_endpoints(eps, c));
    MR_ASSERT_OK(mr_ttls_engine_init(c, NULL));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = addr(g_port);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(fd);
    /* a plain client on the TTLS port is not handed over in plaintext */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(syscall(SYS_connect, fd, (struct sockaddr *)&to, sizeof(to)), 0);
    assert_int_equal(accept(g_ls, NULL, NULL), -1);
    assert_int_equal(errno, ECONNABORTED);
    close(fd);
    mr_ttls_engine_reset();
    start_engine();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocking_roundtrip),
        cmocka_unit_test(test_nonblocking_connect_keeps_epoll),
        cmocka_unit_test(test_failures_map_to_errno),
        cmocka_unit_test(test_descriptors),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_process_without_credentials_refuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
