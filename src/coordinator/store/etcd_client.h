/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small etcd v3 client for the store's etcd backend: a pool of gRPC connections spread over
 * the configured endpoints (failing over to the next one when a member is gone), ranges with
 * paging, transactions, and one watch kept alive on its own thread.
 *
 * Endpoints: "http://host:port" or "https://host:port", comma-separated; with https the
 * server certificate is verified against ca_file (or the system store when NULL) and the
 * host, and cert_file/key_file (PEM) are presented when given.
 *
 * Deadlines: every call finishes within timeout_ms (default 5 s). A call that finds no member
 * able to answer in time fails with MR_ERR_UNAVAILABLE "etcd unavailable: ...". A transaction whose
 * outcome is unknown (the connection broke after it was sent) is not retried: it fails the
 * same way, and the caller's next transaction compares against what is really stored.
 *
 * Threads: any number of threads may call at once (each takes a connection of the pool).
 * The watch callback runs on the watch thread.
 */
#ifndef MR_COORDINATOR_STORE_ETCD_CLIENT_H
#define MR_COORDINATOR_STORE_ETCD_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"
#include "proto/etcd.pb-c.h"

typedef struct mr_etcd mr_etcd;

typedef struct mr_etcd_config {
    const char *endpoints; /* required */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    unsigned timeout_ms;   /* 0 = 5000 */
    unsigned pool_size;    /* 0 = 8 */
} mr_etcd_config;

MR_RESULT mr_etcd_open(const mr_etcd_config *cfg, mr_etcd **out);
/* Stops the watch (joins its thread) and closes every connection. NULL-safe. */
void mr_etcd_close(mr_etcd *e);

/* Visits every key in [key, end) (end empty: key alone) at revision rev (0: the newest, read
 * linearizably), in key order; *header_rev receives the revision the range was read at. */
typedef MR_RESULT (*mr_etcd_kv_fn)(void *arg, const Etcdserverpb__KeyValue *kv);
MR_RESULT mr_etcd_range(mr_etcd *e, mr_slice key, mr_slice end, int64_t rev, mr_etcd_kv_fn fn,
                        void *arg, int64_t *header_rev);
/* One transaction. *succeeded says whether the compares held; *rev is the revision after it. */
MR_RESULT mr_etcd_txn(mr_etcd *e, const Etcdserverpb__TxnRequest *req, bool *succeeded,
                      int64_t *rev);

/* The watch: fn gets every WatchResponse for [key, end) from start_rev on, in order, on the
 * watch thread; after a broken stream it is re-created from the revision after the last event
 * seen. When etcd has compacted that revision away, fn gets a response with compact_revision
 * set and the watch resumes from the newest revision: the caller must reload. One per
 * client. */
typedef void (*mr_etcd_watch_fn)(void *arg, const Etcdserverpb__WatchResponse *resp);
MR_RESULT mr_etcd_watch(mr_etcd *e, mr_slice key, mr_slice end, int64_t start_rev,
                        mr_etcd_watch_fn fn, void *arg);
/* True while the watch stream is connected and created. */
bool mr_etcd_watch_live(mr_etcd *e);
/* The watch is behind what a read showed: drop the stream and make a new one (a stalled
 * connection may never report an error by itself). */
void mr_etcd_watch_kick(mr_etcd *e);

/* key + 1 at the last byte that is not 0xff: the end of the range of keys with this prefix. */
MR_RESULT mr_etcd_prefix_end(mr_slice prefix, mr_buf *end);

#endif
