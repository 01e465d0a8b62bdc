/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading the embedded backend's files: the snapshot and the log are verified (MACs, AEAD
 * tags, the hash chain, sequence numbers) and replayed into the engine. docs/state-format.md
 * states the rules; keep the two in step.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/store/embedded_int.h"

#define CORRUPT(...) MR_BAIL(MR_ERR_CORRUPT, "sealed state is corrupted: " __VA_ARGS__)

static MR_RESULT read_kv(mr_cursor *c, mr_slice *key, bool with_value, mr_slice *val)
{
    uint32_t klen = 0, vlen = 0;
    MR_GUARD(mr_cursor_u32le(c, &klen));
    if (klen == 0 || klen > MR_STORE_KEY_MAX)
        CORRUPT("bad key length");
    MR_GUARD(mr_cursor_view(c, klen, key));
    if (memchr(key->ptr, 0, key->len) != NULL)
        CORRUPT("key contains a NUL byte");
    if (with_value) {
        MR_GUARD(mr_cursor_u32le(c, &vlen));
        if (vlen > MR_STORE_VALUE_MAX)
            CORRUPT("bad value length");
        MR_GUARD(mr_cursor_view(c, vlen, val));
    }
    return MR_SUCCESS;
}

/* Applies (or, with k == NULL, only checks) the ops of one record payload. */
static MR_RESULT apply_payload(kv *k, const uint8_t *p, size_t len, uint64_t seq)
{
    mr_cursor c;
    uint32_t n = 0;
    mr_slice prev = {0};
    mr_cursor_init(&c, p, len);
    MR_GUARD(mr_cursor_u32le(&c, &n));
    if (n == 0)
        CORRUPT("empty commit record");
    for (uint32_t i = 0; i < n; i++) {
        uint8_t op = 0;
        mr_slice key, val = {0};
        MR_GUARD(mr_cursor_u8(&c, &op));
        if (op != OP_PUT && op != OP_DEL)
            CORRUPT("unknown operation in commit record");
        MR_GUARD(read_kv(&c, &key, op == OP_PUT, &val));
        if (i > 0 && key_cmp((const char *)prev.ptr, prev.len, (const char *)key.ptr,
                             key.len) >= 0)
            CORRUPT("commit record keys out of order");
        prev = key;
        if (k != NULL)
            MR_GUARD(kv_load_set(k, (const char *)key.ptr, key.len, val.ptr, val.len,
                                 op == OP_DEL, seq));
    }
    if (mr_cursor_remaining(&c) != 0)
        CORRUPT("trailing bytes in commit record");
    return MR_SUCCESS;
}

/* Parser errors from mr_cursor ("truncated ...", class MR_ERR_PROTOCOL) become corruption
 * with the common prefix and a location; the checks above say so themselves. */
static void corrupt_context(const char *what)
{
    if (!mr_error_is(MR_ERR_PROTOCOL) || mr_error_is(MR_ERR_CORRUPT))
        return;
    mr_error e;
    mr_error_take(&e);
    /* mr_error_set, not a macro: the error keeps the parser's location */
    mr_error_set(MR_ERR_CORRUPT, e.file, e.line, "sealed state is corrupted: %s: %s", what,
                 e.msg);
}

MR_RESULT emb_load_snapshot(emb *e, kv *k, const mr_buf *file, uint64_t *rev)
{
    mr_result res = MR_FAILURE;
    mr_cursor c;
    mr_slice magic, nonce, ct, tag;
    uint16_t version = 0, flags = 0;
    uint64_t plen = 0, count = 0;
    mr_buf p;
    mr_buf_init(&p, SNAP_PAYLOAD_MAX + 1, MR_BUF_SECRET);
    mr_cursor_init(&c, file->data, file->len);
    if (!mr_ok(mr_cursor_view(&c, 4, &magic)) || !mr_ok(mr_cursor_u16le(&c, &version)) ||
        !mr_ok(mr_cursor_u16le(&c, &flags)) || !mr_ok(mr_cursor_u64le(&c, rev)) ||
        !mr_ok(mr_cursor_u64le(&c, &plen)))
        MR_BAIL_OUT(MR_ERR_CORRUPT, "sealed state is corrupted: snapshot header truncated");
    MR_ENSURE_OUT(CRYPTO_memcmp(magic.ptr, SNAP_MAGIC, 4) == 0 && version == FORMAT_VERSION &&
                      flags == 0,
                  MR_ERR_CORRUPT, "sealed state is corrupted: not a version-1 snapshot");
    MR_ENSURE_OUT(plen >= 8 && plen <= SNAP_PAYLOAD_MAX &&
                      mr_cursor_remaining(&c) == NONCE_LEN + plen + TAG_LEN,
                  MR_ERR_CORRUPT, "sealed state is corrupted: snapshot length mismatch");
    MR_GUARD_OUT(mr_cursor_view(&c, NONCE_LEN, &nonce));
    MR_GUARD_OUT(mr_cursor_view(&c, (size_t)plen, &ct));
    MR_GUARD_OUT(mr_cursor_view(&c, TAG_LEN, &tag));
    MR_GUARD_OUT(mr_buf_reserve(&p, (size_t)plen));
    if (!mr_ok(emb_gcm_open(e, nonce.ptr, file->data, SNAP_AAD_LEN, ct.ptr, ct.len, tag.ptr,
                        p.data)))
        MR_BAIL_OUT(MR_ERR_CORRUPT, "sealed state is corrupted: snapshot failed authentication "
                                     "(wrong state key or modified file)");
    p.len = (size_t)plen;
    mr_cursor pc;
    mr_cursor_init(&pc, p.data, p.len);
    MR_GUARD_OUT(mr_cursor_u64le(&pc, &count));
    mr_slice prev = {0};
    for (uint64_t i = 0; i < count; i++) {
        mr_slice key, val;
        MR_GUARD_OUT(read_kv(&pc, &key, true, &val));
        MR_ENSURE_OUT(i == 0 || key_cmp((const char *)prev.ptr, prev.len,
                                        (const char *)key.ptr, key.len) < 0,
                      MR_ERR_CORRUPT, "sealed state is corrupted: snapshot keys out of order");
        prev = key;
        MR_GUARD_OUT(kv_load_set(k, (const char *)key.ptr, key.len, val.ptr, val.len, false,
                                 *rev));
    }
    MR_ENSURE_OUT(mr_cursor_remaining(&pc) == 0, MR_ERR_CORRUPT,
                  "sealed state is corrupted: trailing bytes in snapshot");
    k->durable_rev = k->assigned_rev = *rev;
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        corrupt_context("snapshot");
    mr_buf_free(&p);
    return res;
}

/* True when the rest of the log is zero bytes (ciphertext, not secret: early exit is fine).
 * Only looked at when a record would start with a zero byte, which no record does. */
static bool zero_tail(const uint8_t *p, size_t n)
{
    if (n == 0 || p[0] != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Where the replay of the log stands: the chain head after the last complete record. */
typedef struct log_pos {
    uint64_t seq;       /* sequence number of the last record (the snapshot's revision first) */
    uint8_t digest[32]; /* SHA-256 of the last record (of the snapshot first) */
    bool stale;         /* a log left over from before the last compaction */
    size_t valid;       /* bytes of complete records */
    size_t idx;         /* records read */
} log_pos;

/* One record's header fields and the parts of its body. */
typedef struct log_rec {
    mr_slice hdr, prevd, nonce, ct, tag;
    uint64_t seq;
    uint32_t plen;
} log_rec;

/* Reads and authenticates the header of record idx at offset off. */
static MR_RESULT rec_header(emb *e, mr_cursor *c, size_t idx, size_t off, log_rec *r)
{
    mr_slice mac, magic;
    uint16_t version = 0, flags = 0;
    uint8_t want[REC_MAC_LEN];
    mr_cursor h;
    MR_GUARD(mr_cursor_view(c, REC_AAD_LEN, &r->hdr));
    MR_GUARD(mr_cursor_view(c, REC_MAC_LEN, &mac));
    MR_GUARD(emb_header_mac(e, r->hdr.ptr, want));
    MR_ENSURE(CRYPTO_memcmp(want, mac.ptr, REC_MAC_LEN) == 0, MR_ERR_CORRUPT,
              "sealed state is corrupted: log record %zu (offset %zu) has a bad header "
              "(modified, or not written with this state key)",
              idx, off);
    mr_cursor_init(&h, r->hdr.ptr, r->hdr.len);
    MR_GUARD(mr_cursor_view(&h, 4, &magic));
    MR_GUARD(mr_cursor_u16le(&h, &version));
    MR_GUARD(mr_cursor_u16le(&h, &flags));
    MR_GUARD(mr_cursor_u64le(&h, &r->seq));
    MR_GUARD(mr_cursor_view(&h, 32, &r->prevd));
    MR_GUARD(mr_cursor_u32le(&h, &r->plen));
    MR_ENSURE(CRYPTO_memcmp(magic.ptr, REC_MAGIC, 4) == 0 && version == FORMAT_VERSION &&
                  flags == 0,
              MR_ERR_CORRUPT, "sealed state is corrupted: log record %zu has an "
              "unknown format", idx);
    MR_ENSURE(r->plen <= REC_PAYLOAD_MAX, MR_ERR_CORRUPT,
              "sealed state is corrupted: log record %zu is too large", idx);
    return MR_SUCCESS;
}

/* The record continues the chain (or, as the first one, starts a stale log). */
static MR_RESULT rec_chain(log_pos *p, const log_rec *r, uint64_t snap_rev)
{
    if (p->idx == 0 && CRYPTO_memcmp(r->prevd.ptr, p->digest, 32) != 0) {
        /* A log left over from before the last compaction (crash between the snapshot
         * rename and emptying the log) covers only revisions the snapshot contains. It is
         * verified on its own terms and then ignored. */
        MR_ENSURE(r->seq <= snap_rev, MR_ERR_CORRUPT,
                  "sealed state is corrupted: the log does not continue the snapshot "
                  "(snapshot replaced or log from another state)");
        p->stale = true;
        p->seq = r->seq - 1;
        memcpy(p->digest, r->prevd.ptr, 32);
    }
    MR_ENSURE(r->seq == p->seq + 1, MR_ERR_CORRUPT,
              "sealed state is corrupted: log record %zu has sequence %llu, expected "
              "%llu (record dropped, reordered or replayed)",
              p->idx, (unsigned long long)r->seq, (unsigned long long)(p->seq + 1));
    MR_ENSURE(CRYPTO_memcmp(r->prevd.ptr, p->digest, 32) == 0, MR_ERR_CORRUPT,
              "sealed state is corrupted: log record %zu does not chain to its "
              "predecessor", p->idx);
    return MR_SUCCESS;
}

/* Decrypts the record's payload into buf and applies it to k (only checks it: k == NULL). */
static MR_RESULT rec_apply(emb *e, kv *k, mr_cursor *c, const log_pos *p, log_rec *r,
                           mr_buf *buf)
{
    MR_GUARD(mr_cursor_view(c, NONCE_LEN, &r->nonce));
    MR_GUARD(mr_cursor_view(c, r->plen, &r->ct));
    MR_GUARD(mr_cursor_view(c, TAG_LEN, &r->tag));
    mr_buf_reset(buf);
    MR_GUARD(mr_buf_reserve(buf, (size_t)r->plen + 1));
    if (!mr_ok(emb_gcm_open(e, r->nonce.ptr, r->hdr.ptr, REC_AAD_LEN, r->ct.ptr, r->ct.len,
                            r->tag.ptr, buf->data)))
        MR_BAIL(MR_ERR_CORRUPT, "sealed state is corrupted: log record %zu failed "
                "authentication", p->idx);
    buf->len = r->plen;
    if (!mr_ok(apply_payload(k, buf->data, buf->len, r->seq))) {
        char what[64];
        (void)snprintf(what, sizeof(what), "log record %zu", p->idx); /* fits */
        corrupt_context(what);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

/* The chain heads after loading: a stale log is dropped (cut off before the next write), a
 * torn last record is cut off. */
static MR_RESULT log_finish(emb *e, kv *k, const mr_buf *log, const log_pos *p,
                            uint64_t snap_rev, const uint8_t snap_digest[32])
{
    if (p->stale) {
        MR_ENSURE(p->seq == snap_rev, MR_ERR_CORRUPT,
                  "sealed state is corrupted: the log does not continue the snapshot "
                  "(stale log ends at %llu, snapshot is at %llu)",
                  (unsigned long long)p->seq, (unsigned long long)snap_rev);
        MR_LOG_INFO("ignoring a state log from before the last compaction",
                    MR_F_UINT("records", p->idx));
        e->seq = snap_rev;
        memcpy(e->digest, snap_digest, 32);
        e->log_len = 0;
        e->log_records = 0;
        e->truncate_needed = log->len > 0;
    } else {
        e->seq = p->seq;
        memcpy(e->digest, p->digest, 32);
        e->log_len = p->valid;
        e->log_records = p->idx;
        e->truncate_needed = p->valid < log->len;
        if (p->valid < log->len) {
            e->torn_dropped = log->len - p->valid;
            MR_LOG_WARN("discarding a torn last record of the state log (interrupted write)",
                        MR_F_UINT("bytes", log->len - p->valid));
        }
    }
    e->pseq = e->seq;
    memcpy(e->pdigest, e->digest, 32);
    k->durable_rev = k->assigned_rev = e->seq;
    return MR_SUCCESS;
}

MR_RESULT emb_load_log(emb *e, kv *k, const mr_buf *log, uint64_t snap_rev,
                       const uint8_t snap_digest[32])
{
    mr_result res = MR_FAILURE;
    mr_cursor c;
    mr_buf buf;
    log_pos pos = {.seq = snap_rev};
    memcpy(pos.digest, snap_digest, 32);
    mr_buf_init(&buf, REC_PAYLOAD_MAX + 1, MR_BUF_SECRET);
    mr_cursor_init(&c, log->data, log->len);
    while (mr_cursor_remaining(&c) > 0) {
        size_t off = c.pos, rem = mr_cursor_remaining(&c);
        log_rec r;
        if (rem < REC_HDR_LEN || zero_tail(log->data + off, rem))
            break; /* torn: incomplete header, or a zero-filled tail after a crash */
        MR_GUARD_OUT(rec_header(e, &c, pos.idx, off, &r));
        if (mr_cursor_remaining(&c) < (size_t)NONCE_LEN + r.plen + TAG_LEN)
            break; /* torn: the header made it to disk, the rest did not */
        MR_GUARD_OUT(rec_chain(&pos, &r, snap_rev));
        MR_GUARD_OUT(rec_apply(e, pos.stale ? NULL : k, &c, &pos, &r, &buf));
        MR_GUARD_OUT(mr_sha256(log->data + off, c.pos - off, pos.digest));
        pos.seq = r.seq;
        pos.valid = c.pos;
        pos.idx++;
    }
    MR_GUARD_OUT(log_finish(e, k, log, &pos, snap_rev, snap_digest));
    res = MR_SUCCESS;
out:
    mr_buf_free(&buf);
    return res;
}
