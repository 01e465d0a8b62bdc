/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store-crash-child <dir>: commits counters to the embedded store in a loop and reports each
 * acknowledged commit ("<n>\n") on stdout. The crash test SIGKILLs it at random moments and
 * checks that every acknowledged commit survived. Not a unit test by itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/result.h"
#include "coordinator/store/store.h"
#include "store_test_util.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: store-crash-child <dir>\n");
        return 2;
    }
    /* small thresholds so that kills also land inside compactions */
    mr_store_options o = {.compact_records = 7, .compact_bytes = 16384};
    mr_store *s = NULL;
    if (!mr_ok(mr_store_open_embedded(argv[1], st_dek, sizeof(st_dek), &o, &s))) {
        fprintf(stderr, "open: %s\n", mr_error_get()->msg);
        return 1;
    }
    mr_buf v;
    bool found = false;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    if (!mr_ok(mr_store_get1(s, "counter", &v, &found)) || !mr_ok(mr_buf_nul_terminate(&v)))
        return 1;
    unsigned long n = found ? strtoul((const char *)v.data, NULL, 10) : 0;
    mr_buf_free(&v);
    char key[64], val[64], line[32];
    for (;;) {
        n++;
        mr_store_txn *t = NULL;
        snprintf(val, sizeof(val), "%lu", n);
        snprintf(key, sizeof(key), "c/%08lu", n);
        if (!mr_ok(mr_store_begin(s, &t)) ||
            !mr_ok(mr_store_put(t, "counter", (const uint8_t *)val, strlen(val))) ||
            !mr_ok(mr_store_put(t, key, (const uint8_t *)val, strlen(val))) ||
            !mr_ok(mr_store_commit(t))) {
            fprintf(stderr, "commit: %s\n", mr_error_get()->msg);
            return 1;
        }
        int len = snprintf(line, sizeof(line), "%lu\n", n);
        if (write(1, line, (size_t)len) != len)
            return 1;
    }
}
