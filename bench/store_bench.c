/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store commit micro-benchmark. Benchmarks only.
 *   store-bench DIR [big-keys] [commits]
 * Opens the embedded store in DIR (created; must be empty), times `commits` one-key commits
 * (a 64-byte counter value, as an activation with MaxActivations writes) on an empty store,
 * then loads `big-keys` keys (default 100000; 200-byte values, 1000 keys per commit) and times
 * the same commits again. Reports time, bytes written and fsyncs per commit for both, with
 * real fdatasync and with the store's no_fsync option, and the same-run ratio
 * bytes_per_commit(big) / bytes_per_commit(empty), which must stay ~1 (commit cost must not
 * grow with the state). One JSON line on stdout.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/result.h"
#include "coordinator/store/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct point {
    double us;
    double bytes;
    double fsyncs;
} point;

static mr_result commits(mr_store *s, long n, point *out)
{
    mr_store_stats a, b;
    uint8_t val[64];
    memset(val, 0x11, sizeof(val));
    mr_store_stats_get(s, &a);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        val[0] = (uint8_t)i;
        MR_GUARD(mr_store_put1(s, "bench/counter", val, sizeof(val)));
    }
    double t = now_s() - t0;
    mr_store_stats_get(s, &b);
    out->us = t * 1e6 / (double)n;
    out->bytes = (double)(b.bytes_written - a.bytes_written) / (double)n;
    out->fsyncs = (double)(b.fsyncs - a.fsyncs) / (double)n;
    return MR_SUCCESS;
}

static mr_result populate(mr_store *s, long keys)
{
    uint8_t val[200];
    memset(val, 0x22, sizeof(val));
    for (long i = 0; i < keys;) {
        mr_store_txn *t = NULL;
        MR_GUARD(mr_store_begin(s, &t));
        for (int j = 0; j < 1000 && i < keys; j++, i++) {
            char k[64];
            (void)snprintf(k, sizeof(k), "bench/marble/%08ld", i);
            if (!mr_ok(mr_store_put(t, k, val, sizeof(val)))) {
                mr_store_abort(t);
                return MR_FAILURE;
            }
        }
        MR_GUARD(mr_store_commit(t));
    }
    return MR_SUCCESS;
}

static mr_result run(const char *dir, bool no_fsync, long keys, long n, point *empty, point *big,
                     double *load_s)
{
    mr_store *s = NULL;
    uint8_t dek[MR_STORE_DEK_LEN];
    for (size_t i = 0; i < sizeof(dek); i++) /* a fixed test key */
        dek[i] = 0x42;
    mr_store_options o = {.no_fsync = no_fsync, .compact_bytes = UINT64_MAX,
                          .compact_records = UINT64_MAX};
    MR_GUARD(mr_store_open_embedded(dir, dek, sizeof(dek), &o, &s));
    mr_result r = commits(s, n, empty);
    double t0 = now_s();
    if (mr_ok(r))
        r = populate(s, keys);
    *load_s = now_s() - t0;
    if (mr_ok(r))
        r = commits(s, n, big);
    mr_store_close(s);
    if (mr_ok(r))
        r = mr_store_embedded_remove(dir);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: store-bench DIR [big-keys] [commits]\n");
        return 2;
    }
    long keys = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
    long n = argc > 3 ? strtol(argv[3], NULL, 10) : 500;
    if (keys <= 0 || n <= 0)
        return 2;
    point e1, b1, e0, b0;
    double l1 = 0, l0 = 0;
    if (!mr_ok(run(argv[1], false, keys, n, &e1, &b1, &l1)) ||
        !mr_ok(run(argv[1], true, keys, n, &e0, &b0, &l0))) {
        fprintf(stderr, "store-bench: %s\n", mr_error_get()->msg);
        return 1;
    }
    printf("{\"tool\":\"store-bench\",\"keys\":%ld,\"commits\":%ld,"
           "\"fsync\":{\"empty_us\":%.1f,\"big_us\":%.1f,\"empty_bytes\":%.1f,\"big_bytes\":%.1f,"
           "\"empty_fsyncs\":%.2f,\"big_fsyncs\":%.2f,\"load_s\":%.3f},"
           "\"no_fsync\":{\"empty_us\":%.1f,\"big_us\":%.1f,\"empty_bytes\":%.1f,\"big_bytes\":%.1f},"
           "\"bytes_ratio_big_over_empty\":%.3f,\"time_ratio_big_over_empty_no_fsync\":%.3f}\n",
           keys, n, e1.us, b1.us, e1.bytes, b1.bytes, e1.fsyncs, b1.fsyncs, l1, e0.us, b0.us,
           e0.bytes, b0.bytes, e1.bytes > 0 ? b1.bytes / e1.bytes : 0.0,
           e0.us > 0 ? b0.us / e0.us : 0.0);
    return 0;
}
