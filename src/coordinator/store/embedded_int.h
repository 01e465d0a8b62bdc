/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the embedded backend shared by embedded.c (writing, opening) and
 * embedded_load.c (verifying and replaying the files). The byte layout is documented in
 * docs/state-format.md. */
#ifndef MR_COORDINATOR_STORE_EMBEDDED_INT_H
#define MR_COORDINATOR_STORE_EMBEDDED_INT_H

#include <stdatomic.h>

#include "coordinator/store/internal.h"
#include "crypto/hash.h"

#define SNAP_NAME "state.snap"
#define SNAP_TMP "state.snap.tmp"
#define LOG_NAME "state.log"

#define REC_MAGIC "MRLR"
#define SNAP_MAGIC "MRSS"
#define FORMAT_VERSION 1

#define REC_AAD_LEN 52                      /* magic..payload length */
#define REC_MAC_LEN 16                      /* truncated HMAC-SHA-256 of the AAD bytes */
#define REC_HDR_LEN (REC_AAD_LEN + REC_MAC_LEN) /* 68 */
#define NONCE_LEN 12
#define TAG_LEN 16
#define REC_OVERHEAD (REC_HDR_LEN + NONCE_LEN + TAG_LEN) /* 96 */
#define SNAP_AAD_LEN 24
#define SNAP_OVERHEAD (SNAP_AAD_LEN + NONCE_LEN + TAG_LEN) /* 52 */

#define REC_PAYLOAD_MAX ((uint64_t)256 << 20)
#define SNAP_PAYLOAD_MAX ((uint64_t)1 << 30)
#define OP_PUT 1
#define OP_DEL 2

#define DEFAULT_COMPACT_BYTES ((uint64_t)8 << 20)
#define DEFAULT_COMPACT_RECORDS 4096u /* bounds the log replayed at start-up (~3 µs a record) */

struct emb {
    int dirfd;
    int logfd;
    uint8_t *keys; /* secret: DEK (32) || header MAC key (32) */
    const mr_store_io_hooks *io;
    bool no_fsync;
    uint64_t compact_bytes, compact_records;
    uint64_t next_bytes, next_records; /* compaction triggers; pushed out after a failure */
    /* durable chain head: last record on disk (or the snapshot) */
    uint64_t seq;
    uint8_t digest[32];
    uint64_t log_len;
    uint64_t log_records;
    bool truncate_needed; /* the file has bytes after log_len (torn tail or stale log) */
    /* pending chain head: after the records waiting in `pending` */
    uint64_t pseq;
    uint8_t pdigest[32];
    mr_buf pending;
    mr_buf scratch; /* secret: payload being encoded (reused; wiped after each record) */
    mr_buf recbuf;  /* record being sealed (reused) */
    _Atomic uint64_t fsyncs, bytes_written, batches, compactions;
    uint64_t torn_dropped;
    mr_hmac_sha256 *hmac; /* keyed with the header MAC key */
};

#define DEK(e) ((e)->keys)
#define HKEY(e) ((e)->keys + 32)

/* AES-256-GCM decryption with the DEK. */
MR_RESULT emb_gcm_open(emb *e, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                       const uint8_t *in, size_t len, const uint8_t *tag, uint8_t *out);
/* The truncated HMAC of a record header (store lock held, or while loading). */
MR_RESULT emb_header_mac(emb *e, const uint8_t *aad, uint8_t out[REC_MAC_LEN]);

/* Verifies and applies the snapshot file image; *rev = its revision. Corruption fails with
 * MR_ERR_CORRUPT ("sealed state is corrupted: ..."). */
MR_RESULT emb_load_snapshot(emb *e, kv *k, const mr_buf *file, uint64_t *rev);
/* Verifies the log against the chain head (snap_rev, snap_digest) of the snapshot and applies
 * it to k (unless it is a stale log from before the last compaction); sets e's chain heads. */
MR_RESULT emb_load_log(emb *e, kv *k, const mr_buf *log, uint64_t snap_rev,
                       const uint8_t snap_digest[32]);

#endif
