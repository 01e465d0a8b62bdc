/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LD_PRELOAD shim for benchmark scenario D (durability modes). Benchmarks only.
 *
 *   MR_BENCH_FSYNC_MODE=noop       fsync/fdatasync return 0 without syncing (the "no fsync"
 *                                  reference: what throughput would be without durability)
 *   MR_BENCH_FSYNC_MODE=delay      sleep MR_BENCH_FSYNC_DELAY_US microseconds, then sync for
 *                                  real (emulates a slower durable device)
 *   unset / anything else          pass through (only counts)
 *   MR_BENCH_FSYNC_COUNT_FILE=P    at exit, write the number of fsync+fdatasync calls to P
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static atomic_ulong g_calls;
static int g_mode = -1; /* 0 pass, 1 noop, 2 delay */
static long g_delay_us;

static void setup(void)
{
    if (g_mode >= 0)
        return;
    const char *m = getenv("MR_BENCH_FSYNC_MODE");
    const char *d = getenv("MR_BENCH_FSYNC_DELAY_US");
    g_delay_us = d != NULL ? strtol(d, NULL, 10) : 0;
    if (m != NULL && strcmp(m, "noop") == 0)
        g_mode = 1;
    else if (m != NULL && strcmp(m, "delay") == 0)
        g_mode = 2;
    else
        g_mode = 0;
}

static int common(int fd, const char *name)
{
    setup();
    atomic_fetch_add(&g_calls, 1);
    if (g_mode == 1)
        return 0;
    if (g_mode == 2 && g_delay_us > 0) {
        struct timespec ts = {.tv_sec = g_delay_us / 1000000, .tv_nsec = (g_delay_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    sync_fn real = (sync_fn)dlsym(RTLD_NEXT, name);
    return real != NULL ? real(fd) : -1;
}

__attribute__((visibility("default"))) int fsync(int fd) { return common(fd, "fsync"); }
__attribute__((visibility("default"))) int fdatasync(int fd) { return common(fd, "fdatasync"); }

__attribute__((destructor)) static void report(void)
{
    const char *p = getenv("MR_BENCH_FSYNC_COUNT_FILE");
    if (p == NULL)
        return;
    FILE *f = fopen(p, "w");
    if (f == NULL)
        return;
    fprintf(f, "%lu\n", atomic_load(&g_calls));
    fclose(f);
}
