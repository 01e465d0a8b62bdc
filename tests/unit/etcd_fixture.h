/* SPDX-License-Identifier: Apache-2.0 */
/* Starts and stops single-member etcd servers (Debian's etcd-server) for unit tests. */
#ifndef MR_TEST_ETCD_FIXTURE_H
#define MR_TEST_ETCD_FIXTURE_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct etcd_fixture {
    pid_t pid;
    char dir[128];
    char port[16];
} etcd_fixture;

extern char **environ;

/* SIGSTOP, then waits until every thread of pid is stopped: the signal is asynchronous, and a
 * thread still running could answer one more request. */
static inline void etcd_freeze(pid_t pid)
{
    kill(pid, SIGSTOP);
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    for (int round = 0; round < 400; round++) {
        int running = 0;
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[384], buf[256];
            snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
            FILE *f = fopen(path, "r");
            size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
            if (f != NULL)
                fclose(f);
            buf[n] = '\0';
            const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
            if (rp != NULL && rp[1] == ' ' && rp[2] != 'T' && rp[2] != 't')
                running++;
        }
        if (d != NULL)
            closedir(d);
        if (running == 0)
            return;
        usleep(5 * 1000);
    }
}

static inline int etcd_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0)
        abort();
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline int etcd_try_connect(const char *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)strtoul(port, NULL, 10))};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* 0 when started; -1 when the etcd binary is missing (the caller skips). */
static inline int etcd_start(etcd_fixture *f)
{
    if (access("/usr/bin/etcd", X_OK) != 0)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mr-etcd-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        abort();
    int cport = etcd_free_port(), pport = etcd_free_port();
    char curl[64], purl[64], cluster[96];
    snprintf(f->port, sizeof(f->port), "%d", cport);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", cport);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pport);
    snprintf(cluster, sizeof(cluster), "t=%s", purl);
    char *argv[] = {"/usr/bin/etcd", "--name", "t", "--data-dir", f->dir,
                    "--listen-client-urls", curl, "--advertise-client-urls", curl,
                    "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                    "--initial-cluster", cluster, "--log-level", "error",
                    "--logger", "zap", "--max-txn-ops", "4096",
                    "--max-request-bytes", "33554432", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    if (posix_spawn(&f->pid, argv[0], &fa, NULL, argv, environ) != 0)
        abort();
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 200 && !etcd_try_connect(f->port); i++)
        usleep(50 * 1000);
    usleep(300 * 1000); /* the member elects itself leader */
    return 0;
}

static inline void etcd_stop(etcd_fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    if (strncmp(f->dir, "/tmp/mr-etcd-", 13) == 0) {
        char *argv[] = {"/bin/rm", "-rf", f->dir, NULL};
        pid_t pid = 0;
        if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) == 0)
            waitpid(pid, NULL, 0);
    }
}

/* ---- a three-member cluster ---- */

typedef struct etcd_cluster {
    etcd_fixture m[3];
    int peer_port[3];
    char endpoints[256];
    char initial[512];
} etcd_cluster;

static inline void etcd_member_spawn(etcd_cluster *cl, int i)
{
    etcd_fixture *f = &cl->m[i];
    char name[8], curl[64], purl[64];
    snprintf(name, sizeof(name), "m%d", i);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%s", f->port);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", cl->peer_port[i]);
    char *argv[] = {"/usr/bin/etcd", "--name", name, "--data-dir", f->dir,
                    "--listen-client-urls", curl, "--advertise-client-urls", curl,
                    "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                    "--initial-cluster", cl->initial, "--initial-cluster-state", "new",
                    "--heartbeat-interval", "50", "--election-timeout", "500",
                    "--log-level", "error", "--logger", "zap", "--max-txn-ops", "4096",
                    "--max-request-bytes", "33554432", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    if (posix_spawn(&f->pid, argv[0], &fa, NULL, argv, environ) != 0)
        abort();
    posix_spawn_file_actions_destroy(&fa);
}

static inline int etcd_cluster_start(etcd_cluster *cl)
{
    if (access("/usr/bin/etcd", X_OK) != 0)
        return -1;
    size_t off = 0, eoff = 0;
    for (int i = 0; i < 3; i++) {
        etcd_fixture *f = &cl->m[i];
        snprintf(f->dir, sizeof(f->dir), "/tmp/mr-etcd-XXXXXX");
        if (mkdtemp(f->dir) == NULL)
            abort();
        snprintf(f->port, sizeof(f->port), "%d", etcd_free_port());
        cl->peer_port[i] = etcd_free_port();
        off += (size_t)snprintf(cl->initial + off, sizeof(cl->initial) - off, "%sm%d=http://127.0.0.1:%d",
                                i ? "," : "", i, cl->peer_port[i]);
        eoff += (size_t)snprintf(cl->endpoints + eoff, sizeof(cl->endpoints) - eoff,
                                 "%shttp://127.0.0.1:%s", i ? "," : "", f->port);
    }
    for (int i = 0; i < 3; i++)
        etcd_member_spawn(cl, i);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 200 && !etcd_try_connect(cl->m[i].port); k++)
            usleep(50 * 1000);
    usleep(1500 * 1000); /* a leader is elected */
    return 0;
}

/* Restarts a member that was killed (same data directory). */
static inline void etcd_member_restart(etcd_cluster *cl, int i)
{
    cl->m[i].pid = 0;
    etcd_member_spawn(cl, i);
    for (int k = 0; k < 200 && !etcd_try_connect(cl->m[i].port); k++)
        usleep(50 * 1000);
}

static inline void etcd_member_kill(etcd_cluster *cl, int i)
{
    if (cl->m[i].pid > 0) {
        kill(cl->m[i].pid, SIGKILL);
        waitpid(cl->m[i].pid, NULL, 0);
        cl->m[i].pid = 0;
    }
}

static inline void etcd_cluster_stop(etcd_cluster *cl)
{
    for (int i = 0; i < 3; i++)
        etcd_stop(&cl->m[i]);
}

#endif
