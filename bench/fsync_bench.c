/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsync micro-benchmark (calibration, perf-anchors §2.6). Benchmarks only.
 *   fsync-bench DIR [iterations]
 * Prints one JSON line with microseconds per operation for: 4 KiB overwrite at offset 0 +
 * fdatasync, 4 KiB append + fdatasync, atomic replace of a 4 KiB file (write temp, fsync,
 * rename, fsync directory), and a 64 KiB append + fdatasync (group of 16 records).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned char g_block[65536];

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fsync-bench DIR [iterations]\n");
        return 2;
    }
    const char *dir = argv[1];
    long iters = argc > 2 ? strtol(argv[2], NULL, 10) : 300;
    if (iters <= 0)
        iters = 300;
    char a[4096], t[4096], f[4096];
    (void)snprintf(a, sizeof(a), "%s/fsync-bench.log", dir);
    (void)snprintf(t, sizeof(t), "%s/fsync-bench.tmp", dir);
    (void)snprintf(f, sizeof(f), "%s/fsync-bench.dat", dir);
    for (size_t i = 0; i < sizeof(g_block); i++)
        g_block[i] = (unsigned char)(i * 131u);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (dfd < 0 || fd < 0) {
        perror("open");
        return 1;
    }
    double t0 = now_s();
    for (long i = 0; i < iters; i++)
        if (pwrite(fd, g_block, 4096, 0) != 4096 || fdatasync(fd) != 0)
            return 1;
    double overwrite = (now_s() - t0) * 1e6 / (double)iters;
    close(fd);

    fd = open(a, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0)
        return 1;
    t0 = now_s();
    for (long i = 0; i < iters; i++)
        if (write_all(fd, g_block, 4096) != 0 || fdatasync(fd) != 0)
            return 1;
    double append = (now_s() - t0) * 1e6 / (double)iters;
    t0 = now_s();
    long groups = iters / 4 > 0 ? iters / 4 : 1;
    for (long i = 0; i < groups; i++)
        if (write_all(fd, g_block, sizeof(g_block)) != 0 || fdatasync(fd) != 0)
            return 1;
    double group = (now_s() - t0) * 1e6 / (double)groups;
    close(fd);

    t0 = now_s();
    for (long i = 0; i < iters; i++) {
        int tf = open(t, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (tf < 0 || write_all(tf, g_block, 4096) != 0 || fsync(tf) != 0)
            return 1;
        close(tf);
        if (rename(t, f) != 0 || fsync(dfd) != 0)
            return 1;
    }
    double replace = (now_s() - t0) * 1e6 / (double)iters;
    close(dfd);
    (void)unlink(a);
    (void)unlink(f);
    printf("{\"tool\":\"fsync-bench\",\"iterations\":%ld,\"overwrite_fdatasync_us\":%.1f,"
           "\"append_fdatasync_us\":%.1f,\"atomic_replace_us\":%.1f,"
           "\"group16_append_fdatasync_us\":%.1f,\"group16_per_record_us\":%.1f}\n",
           iters, overwrite, append, replace, group, group / 16.0);
    return 0;
}
