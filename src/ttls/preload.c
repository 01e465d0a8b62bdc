/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libmarble-ttls.so: the functions it interposes (every one passes straight to libc unless the
 * descriptor or address belongs to a TTLS entry), its constructor, and exec handling.
 *
 * Constructor: reads MARBLE_TTLS_CONFIG, removes it from environ and wipes its bytes in place
 * (so /proc/<pid>/environ no longer shows it either), builds the TLS contexts, logs the policy
 * and starts intercepting. A config that cannot be used ends the process (exit status 1): the
 * marble was told to talk TLS and must not fall back to plaintext.
 *
 * Children: MARBLE_TTLS_ENDPOINTS (the entry keys, no key material) stays in the environment.
 * A program the marble executes with this library preloaded gets MARBLE_TTLS_CONFIG back in
 * its exec environment (execve, execv, execvp, execvpe, execl, execlp, execle, fexecve,
 * posix_spawn, posix_spawnp), and clears it again at once. A process that has the library but
 * not the config (started through system() or popen(), whose exec glibc makes internally)
 * refuses the TTLS endpoints instead of using them in plaintext.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "ttls/ttls.h"

#define EXPORT __attribute__((visibility("default")))
#define LIB_NAME "libmarble-ttls.so"

extern char **environ;

static int (*real_getaddrinfo)(const char *, const char *, const struct addrinfo *,
                               struct addrinfo **);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                               const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                                const posix_spawnattr_t *, char *const[], char *const[]);

static pthread_once_t g_resolve_once = PTHREAD_ONCE_INIT;

#define RESOLVE(var, name) (var) = (__typeof__(var))dlsym(RTLD_NEXT, name)

static void resolve(void)
{
    mr_ttls_libc_resolve();
    RESOLVE(real_getaddrinfo, "getaddrinfo");
    RESOLVE(real_recvfrom, "recvfrom");
    RESOLVE(real_recvmsg, "recvmsg");
    RESOLVE(real_sendto, "sendto");
    RESOLVE(real_sendmsg, "sendmsg");
    RESOLVE(real_execve, "execve");
    RESOLVE(real_execvpe, "execvpe");
    RESOLVE(real_fexecve, "fexecve");
    RESOLVE(real_posix_spawn, "posix_spawn");
    RESOLVE(real_posix_spawnp, "posix_spawnp");
}

static void resolve_all(void) { (void)pthread_once(&g_resolve_once, resolve); }

/* Makes sure the real function is known (a hook can run before the constructor). */
#define REAL(f) (resolve_all(), mr_ttls_real.f)

/* ---- sockets ---- */

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    resolve_all();
    return mr_ttls_connect(fd, sa, len);
}

EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
    resolve_all();
    return mr_ttls_accept(fd, sa, len, 0, false);
}

EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    resolve_all();
    return mr_ttls_accept(fd, sa, len, flags, true);
}

EXPORT int close(int fd)
{
    resolve_all();
    return mr_ttls_close(fd);
}

EXPORT int dup(int fd) { return mr_ttls_dup_done(fd, REAL(dup)(fd)); }

EXPORT int dup2(int oldfd, int newfd)
{
    resolve_all();
    return mr_ttls_dup2(oldfd, newfd, 0, false);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    resolve_all();
    return mr_ttls_dup2(oldfd, newfd, flags, true);
}

/* fcntl's third argument is an int or a pointer, or absent; like glibc we pass on a pointer-sized
 * value (both travel in the same register class on the ABIs glibc supports). */
static int fcntl_hook(int fd, int cmd, void *arg)
{
    int r = REAL(fcntl)(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        return mr_ttls_dup_done(fd, r);
    return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_hook(fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_hook(fd, cmd, arg);
}

EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
    resolve_all();
    return mr_ttls_getname(fd, sa, len, false);
}

EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
    resolve_all();
    return mr_ttls_getname(fd, sa, len, true);
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    resolve_all();
    return mr_ttls_getsockopt(fd, level, name, val, len);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    resolve_all();
    return mr_ttls_setsockopt(fd, level, name, val, len);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int r = REAL(epoll_ctl)(epfd, op, fd, ev);
    if (r == 0)
        mr_ttls_epoll_ctl_done(epfd, op, fd, ev);
    return r;
}

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    resolve_all();
    int r = real_getaddrinfo(node, service, hints, res);
    if (r == 0 && res != NULL)
        mr_ttls_names_record(mr_ttls_active(), node, *res);
    return r;
}

/* A TCP socket reports no source address for received data; AF_UNIX would name one. */
EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
                        socklen_t *len)
{
    resolve_all();
    ssize_t r = real_recvfrom(fd, buf, n, flags, sa, len);
    if (r >= 0 && sa != NULL && len != NULL && mr_ttls_active() != NULL && mr_ttls_is_conn(fd))
        *len = 0;
    return r;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    resolve_all();
    ssize_t r = real_recvmsg(fd, msg, flags);
    if (r >= 0 && msg != NULL && msg->msg_name != NULL && mr_ttls_active() != NULL &&
        mr_ttls_is_conn(fd))
        msg->msg_namelen = 0;
    return r;
}

/* TCP ignores a destination on a connected socket; AF_UNIX would refuse it (EISCONN). */
EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                      socklen_t len)
{
    resolve_all();
    if (sa != NULL && mr_ttls_active() != NULL) {
        if ((flags & MSG_FASTOPEN) != 0 && mr_ttls_refuse_fastopen(sa, len)) {
            errno = EOPNOTSUPP;
            return -1;
        }
        if (mr_ttls_is_conn(fd))
            return real_sendto(fd, buf, n, flags, NULL, 0);
    }
    return real_sendto(fd, buf, n, flags, sa, len);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    resolve_all();
    if (msg != NULL && msg->msg_name != NULL && mr_ttls_active() != NULL) {
        if ((flags & MSG_FASTOPEN) != 0 &&
            mr_ttls_refuse_fastopen(msg->msg_name, msg->msg_namelen)) {
            errno = EOPNOTSUPP;
            return -1;
        }
        if (mr_ttls_is_conn(fd)) {
            struct msghdr copy = *msg;
            copy.msg_name = NULL;
            copy.msg_namelen = 0;
            return real_sendmsg(fd, &copy, flags);
        }
    }
    return real_sendmsg(fd, msg, flags);
}

/* ---- exec: hand the config to programs that preload the library ---- */

static char *g_cfg_env; /* "MARBLE_TTLS_CONFIG=..." in secret memory (process lifetime) */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* envp plus the config when the new program preloads the library and lacks it; a new array
 * (free with mr_free) or envp itself. */
static char **with_config(char *const envp[], bool *owned)
{
    *owned = false;
    if (g_cfg_env == NULL || envp == NULL)
        return (char **)(uintptr_t)envp;
    size_t n = 0;
    bool preload = false;
    for (; envp[n] != NULL; n++) {
        if (has_prefix(envp[n], MR_TTLS_CONFIG_VAR "="))
            return (char **)(uintptr_t)envp;
        if (has_prefix(envp[n], "LD_PRELOAD=") && strstr(envp[n], LIB_NAME) != NULL)
            preload = true;
    }
    if (!preload)
        return (char **)(uintptr_t)envp;
    char **e = mr_calloc(n + 2, sizeof(char *));
    if (e == NULL)
        return (char **)(uintptr_t)envp;
    for (size_t i = 0; i < n; i++)
        e[i] = envp[i];
    e[n] = g_cfg_env;
    *owned = true;
    return e;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    resolve_all();
    bool owned = false;
    char **e = with_config(envp, &owned);
    int r = real_execve(path, argv, e);
    int err = errno;
    if (owned)
        mr_free(e);
    errno = err;
    return r;
}

EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    resolve_all();
    bool owned = false;
    char **e = with_config(envp, &owned);
    int r = real_execvpe(file, argv, e);
    int err = errno;
    if (owned)
        mr_free(e);
    errno = err;
    return r;
}

EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    resolve_all();
    bool owned = false;
    char **e = with_config(envp, &owned);
    int r = real_fexecve(fd, argv, e);
    int err = errno;
    if (owned)
        mr_free(e);
    errno = err;
    return r;
}

/* The variadic forms: argv from the arguments (and envp after the NULL for execle). */
static char **collect_args(const char *arg0, va_list ap, char ***envp)
{
    va_list count;
    va_copy(count, ap);
    size_t n = 1;
    while (va_arg(count, const char *) != NULL)
        n++;
    va_end(count);
    char **argv = mr_calloc(n + 1, sizeof(char *));
    if (argv == NULL)
        return NULL;
    argv[0] = (char *)(uintptr_t)arg0;
    for (size_t i = 1; i < n; i++)
        argv[i] = va_arg(ap, char *);
    (void)va_arg(ap, char *); /* the NULL */
    if (envp != NULL)
        *envp = va_arg(ap, char **);
    return argv;
}

EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    char **argv = collect_args(arg, ap, NULL);
    va_end(ap);
    if (argv == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int r = execve(path, argv, environ);
    int err = errno;
    mr_free(argv);
    errno = err;
    return r;
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    char **envp = NULL;
    va_start(ap, arg);
    char **argv = collect_args(arg, ap, &envp);
    va_end(ap);
    if (argv == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int r = execve(path, argv, envp);
    int err = errno;
    mr_free(argv);
    errno = err;
    return r;
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    char **argv = collect_args(arg, ap, NULL);
    va_end(ap);
    if (argv == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int r = execvpe(file, argv, environ);
    int err = errno;
    mr_free(argv);
    errno = err;
    return r;
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    resolve_all();
    bool owned = false;
    char **e = with_config(envp, &owned);
    int r = real_posix_spawn(pid, path, fa, attr, argv, e);
    if (owned)
        mr_free(e);
    return r;
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    resolve_all();
    bool owned = false;
    char **e = with_config(envp, &owned);
    int r = real_posix_spawnp(pid, file, fa, attr, argv, e);
    if (owned)
        mr_free(e);
    return r;
}

/* ---- exit: what the application wrote must still go out ---- */

#define EXIT_FLUSH_MS 3000

static void (*real_exit_fn)(int);
static void (*real_Exit_fn)(int);

EXPORT __attribute__((noreturn)) void _exit(int status)
{
    resolve_all();
    mr_ttls_flush_all(EXIT_FLUSH_MS);
    if (real_exit_fn == NULL)
        real_exit_fn = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
    real_exit_fn(status);
    __builtin_unreachable();
}

EXPORT __attribute__((noreturn)) void _Exit(int status)
{
    resolve_all();
    mr_ttls_flush_all(EXIT_FLUSH_MS);
    if (real_Exit_fn == NULL)
        real_Exit_fn = (void (*)(int))dlsym(RTLD_NEXT, "_Exit");
    real_Exit_fn(status);
    __builtin_unreachable();
}

/* exit() and returning from main */
__attribute__((destructor)) static void ttls_stop(void) { mr_ttls_flush_all(EXIT_FLUSH_MS); }

/* ---- start ---- */

static unsigned opt(const char *name, unsigned def, unsigned lo, unsigned hi)
{
    uint64_t v = 0;
    if (mr_config_get(name) == NULL || !mr_ok(mr_config_u64(name, &v)) || v < lo || v > hi) {
        if (mr_config_get(name) != NULL)
            mr_ttls_log(MR_TTLS_WARN, "ignoring an invalid setting", "variable", name,
                        (const char *)NULL);
        return def;
    }
    return (unsigned)v;
}

static void log_policy(const mr_ttls_config *c, mr_ttls_level level)
{
    mr_buf lines;
    mr_buf_init(&lines, 0, 0);
    if (mr_ok(mr_ttls_policy_lines(c, &lines))) {
        char *s = (char *)lines.data;
        while (s != NULL && *s != '\0') {
            char *nl = strchr(s, '\n');
            if (nl != NULL)
                *nl = '\0';
            mr_ttls_log(level, s, (const char *)NULL);
            s = nl != NULL ? nl + 1 : NULL;
        }
    }
    mr_buf_free(&lines);
}

static __attribute__((noreturn)) void fatal(const char *what)
{
    mr_ttls_log(MR_TTLS_ERROR, what, "error", mr_error_get()->msg, (const char *)NULL);
    _exit(1);
}

/* Takes the variable out of the environment and wipes the bytes it occupied. */
static char *take_config(size_t *size)
{
    const size_t plen = strlen(MR_TTLS_CONFIG_VAR "=");
    char *orig = NULL;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (has_prefix(*e, MR_TTLS_CONFIG_VAR "="))
            orig = *e;
    if (orig == NULL || orig[plen] == '\0')
        return NULL;
    size_t total = strlen(orig);
    char *copy = mr_secret_alloc(total + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, orig, total + 1);
    OPENSSL_cleanse(orig + plen, total - plen);
    (void)unsetenv(MR_TTLS_CONFIG_VAR);
    OPENSSL_cleanse(orig, plen);
    *size = total + 1;
    return copy;
}

__attribute__((constructor)) static void ttls_start(void)
{
    resolve_all();
    mr_ttls_log_init();
    mr_ttls_opts o = {
        .handshake_timeout_ms = opt("EDG_MARBLE_TTLS_HANDSHAKE_TIMEOUT_MS", 10000, 100, 3600000),
        .accept_wait_ms = opt("EDG_MARBLE_TTLS_ACCEPT_WAIT_MS", 1000, 0, 60000),
        .connect_wait_ms = opt("EDG_MARBLE_TTLS_CONNECT_WAIT_MS", 10000, 0, 3600000),
        .threads = opt("EDG_MARBLE_TTLS_THREADS", 1, 1, 16),
    };
    /* a program the marble started (it inherited the endpoints): the policy was logged */
    const char *inherited = getenv(MR_TTLS_ENDPOINTS_VAR);
    mr_ttls_level policy_level = inherited != NULL && inherited[0] != '\0' ? MR_TTLS_DEBUG
                                                                           : MR_TTLS_INFO;
    size_t size = 0;
    char *env = take_config(&size);
    mr_ttls_config *cfg = mr_calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        _exit(1);
    if (env == NULL) {
        const char *eps = getenv(MR_TTLS_ENDPOINTS_VAR);
        if (eps == NULL || eps[0] == '\0') {
            mr_free(cfg);
            return; /* not a TTLS marble: every hook passes through */
        }
        if (!mr_ok(mr_ttls_config_parse_endpoints(eps, cfg)))
            fatal(MR_TTLS_ENDPOINTS_VAR " cannot be used; exiting");
        mr_ttls_log(MR_TTLS_WARN,
                    "this process did not receive the TTLS credentials: its connections to "
                    "the marble's TTLS endpoints are refused",
                    "endpoints", eps, (const char *)NULL);
    } else {
        const size_t plen = strlen(MR_TTLS_CONFIG_VAR "=");
        if (!mr_ok(mr_ttls_config_parse(env + plen, size - 1 - plen, cfg)))
            fatal("MARBLE_TTLS_CONFIG cannot be used; exiting");
        for (size_t i = 0; i < cfg->count; i++)
            if (!mr_ok(mr_ttls_entry_tls(&cfg->entries[i])))
                fatal("MARBLE_TTLS_CONFIG cannot be used; exiting");
        g_cfg_env = env;
        mr_buf eps;
        mr_buf_init(&eps, 0, 0);
        if (!mr_ok(mr_ttls_config_endpoints(cfg, &eps)) ||
            setenv(MR_TTLS_ENDPOINTS_VAR, (const char *)eps.data, 1) != 0)
            fatal("cannot set " MR_TTLS_ENDPOINTS_VAR "; exiting");
        mr_buf_free(&eps);
        log_policy(cfg, policy_level);
    }
    mr_ttls_names_set_resolver(real_getaddrinfo);
    if (!mr_ok(mr_ttls_engine_init(cfg, &o)))
        fatal("TTLS cannot start; exiting");
}
