/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Embedded backend: sealed snapshot + append-only log of sealed commit records in one
 * directory. The byte layout and the load rules are documented in docs/state-format.md; keep
 * the two in step. This file writes (records, group-commit batches, snapshots) and opens the
 * files; embedded_load.c verifies and replays them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/embedded_int.h"
#include "coordinator/store/internal.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "crypto/rand.h"

static const char GENESIS_LABEL[] = "MarbleRun-C state genesis v1";
static const char HMAC_INFO[] = "MarbleRun-C state log header MAC v1";

/* ------------------------------------------------------------------------------------------ */
/* crypto helpers (src/crypto: algorithms fetched once per process)                           */

/* AES-256-GCM with the DEK; decryption failures of any kind are reported by the callers as
 * corruption. */
static MR_RESULT gcm_seal(emb *e, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                          const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    return mr_aead_encrypt(MR_SLICE(DEK(e), 32), nonce, MR_SLICE(aad, aad_len),
                           MR_SLICE(in, len), out, tag);
}

MR_RESULT emb_gcm_open(emb *e, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                          const uint8_t *in, size_t len, const uint8_t *tag, uint8_t *out)
{
    return mr_aead_decrypt(MR_SLICE(DEK(e), 32), nonce, MR_SLICE(aad, aad_len),
                           MR_SLICE(in, len), tag, out);
}

/* Called under the store lock (or while loading): one MAC context per store suffices. */
MR_RESULT emb_header_mac(emb *e, const uint8_t *aad, uint8_t out[REC_MAC_LEN])
{
    mr_result res = MR_FAILURE;
    uint8_t full[32];
    MR_GUARD_OUT(mr_hmac_sha256_mac(e->hmac, MR_SLICE(aad, REC_AAD_LEN), full));
    memcpy(out, full, REC_MAC_LEN);
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(full, sizeof(full));
    return res;
}

static MR_RESULT derive_hkey(const uint8_t *dek, uint8_t *out)
{
    return mr_hkdf_sha256_raw(MR_SLICE(dek, 32), MR_SLICE(NULL, 0),
                              MR_SLICE(HMAC_INFO, sizeof(HMAC_INFO) - 1), out, 32);
}

/* ------------------------------------------------------------------------------------------ */
/* file helpers                                                                               */

static ssize_t do_pwrite(const emb *e, int fd, const void *p, size_t n, off_t off)
{
    if (e->io != NULL && e->io->pwrite != NULL)
        return e->io->pwrite(e->io->ctx, fd, p, n, off);
    return pwrite(fd, p, n, off);
}

static int do_sync(emb *e, int fd)
{
    atomic_fetch_add(&e->fsyncs, 1);
    if (e->io != NULL && e->io->fdatasync != NULL)
        return e->io->fdatasync(e->io->ctx, fd);
    return fdatasync(fd);
}

static MR_RESULT write_all(emb *e, int fd, const uint8_t *p, size_t n, off_t off,
                           const char *what)
{
    while (n > 0) {
        ssize_t w = do_pwrite(e, fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        MR_ENSURE(w > 0, MR_ERR_IO, "writing %s failed: %s", what,
                  w < 0 ? strerror(errno) : "no progress");
        atomic_fetch_add(&e->bytes_written, (uint64_t)w);
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return MR_SUCCESS;
}

static MR_RESULT sync_fd(emb *e, int fd, const char *what)
{
    if (e->no_fsync)
        return MR_SUCCESS;
    MR_ENSURE(do_sync(e, fd) == 0, MR_ERR_IO, "syncing %s failed: %s", what, strerror(errno));
    return MR_SUCCESS;
}

/* Reads a whole file relative to dirfd. *exists = false when it is missing. */
static MR_RESULT read_file(int dirfd, const char *name, uint64_t max, mr_buf *out, bool *exists)
{
    mr_result res = MR_FAILURE;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    *exists = false;
    if (fd < 0 && errno == ENOENT)
        return MR_SUCCESS;
    MR_ENSURE(fd >= 0, MR_ERR_IO, "opening %s failed: %s", name, strerror(errno));
    *exists = true;
    MR_ENSURE_OUT(fstat(fd, &st) == 0, MR_ERR_IO, "reading %s failed: %s", name,
                  strerror(errno));
    MR_ENSURE_OUT(S_ISREG(st.st_mode), MR_ERR_IO, "%s is not a regular file", name);
    MR_ENSURE_OUT((uint64_t)st.st_size <= max, MR_ERR_CORRUPT,
                  "sealed state is corrupted: %s is too large", name);
    MR_GUARD_OUT(mr_buf_reserve(out, (size_t)st.st_size + 1));
    for (;;) {
        MR_GUARD_OUT(mr_buf_reserve(out, 4096));
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len);
        if (r < 0 && errno == EINTR)
            continue;
        MR_ENSURE_OUT(r >= 0, MR_ERR_IO, "reading %s failed: %s", name, strerror(errno));
        if (r == 0)
            break;
        out->len += (size_t)r;
        MR_ENSURE_OUT(out->len <= max, MR_ERR_CORRUPT,
                      "sealed state is corrupted: %s is too large", name);
    }
    res = MR_SUCCESS;
out:
    close(fd);
    return res;
}

/* ------------------------------------------------------------------------------------------ */
/* records                                                                                    */

static MR_RESULT encode_payload(const wop *ops, size_t n, mr_buf *p)
{
    MR_GUARD(mr_buf_append_u32le(p, (uint32_t)n));
    for (size_t i = 0; i < n; i++) {
        MR_GUARD(mr_buf_append_u8(p, ops[i].del ? OP_DEL : OP_PUT));
        MR_GUARD(mr_buf_append_u32le(p, (uint32_t)ops[i].klen));
        MR_GUARD(mr_buf_append(p, ops[i].key, ops[i].klen));
        if (!ops[i].del) {
            MR_GUARD(mr_buf_append_u32le(p, (uint32_t)ops[i].len));
            MR_GUARD(mr_buf_append(p, ops[i].val, ops[i].len));
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT build_record(emb *e, uint64_t seq, const uint8_t prev[32],
                              const mr_buf *payload, mr_buf *rec)
{
    uint8_t mac[REC_MAC_LEN], nonce[NONCE_LEN], tag[TAG_LEN];
    MR_GUARD(mr_buf_reserve(rec, REC_OVERHEAD + payload->len));
    MR_GUARD(mr_buf_append(rec, REC_MAGIC, 4));
    MR_GUARD(mr_buf_append_u16le(rec, FORMAT_VERSION));
    MR_GUARD(mr_buf_append_u16le(rec, 0));
    MR_GUARD(mr_buf_append_u64le(rec, seq));
    MR_GUARD(mr_buf_append(rec, prev, 32));
    MR_GUARD(mr_buf_append_u32le(rec, (uint32_t)payload->len));
    MR_GUARD(emb_header_mac(e, rec->data, mac));
    MR_GUARD(mr_buf_append(rec, mac, sizeof(mac)));
    MR_GUARD(mr_crypto_random(nonce, NONCE_LEN));
    MR_GUARD(mr_buf_append(rec, nonce, sizeof(nonce)));
    size_t ct_off = rec->len;
    rec->len += payload->len; /* reserved above */
    MR_GUARD(gcm_seal(e, nonce, rec->data, REC_AAD_LEN, payload->data, payload->len,
                      rec->data + ct_off, tag));
    MR_GUARD(mr_buf_append(rec, tag, TAG_LEN));
    return MR_SUCCESS;
}

MR_RESULT emb_append(emb *e, uint64_t rev, const wop *ops, size_t n)
{
    mr_result res = MR_FAILURE;
    uint8_t d[32];
    MR_ENSURE_OUT(rev == e->pseq + 1, MR_ERR_INTERNAL, "internal error: record out of order");
    MR_GUARD_OUT(encode_payload(ops, n, &e->scratch));
    MR_GUARD_OUT(build_record(e, rev, e->pdigest, &e->scratch, &e->recbuf));
    MR_GUARD_OUT(mr_sha256(e->recbuf.data, e->recbuf.len, d));
    MR_GUARD_OUT(mr_buf_append(&e->pending, e->recbuf.data, e->recbuf.len));
    e->pseq = rev;
    memcpy(e->pdigest, d, 32);
    res = MR_SUCCESS;
out:
    mr_buf_reset(&e->scratch);
    mr_buf_reset(&e->recbuf);
    return res;
}

void emb_take_batch(emb *e, mr_buf *batch, uint64_t *end_seq, uint8_t end_digest[32])
{
    *batch = e->pending;
    mr_buf_init(&e->pending, SIZE_MAX, 0);
    *end_seq = e->pseq;
    memcpy(end_digest, e->pdigest, 32);
}

MR_RESULT emb_flush(emb *e, const mr_buf *batch, bool *broken)
{
    *broken = false;
    if (e->truncate_needed) {
        MR_ENSURE(ftruncate(e->logfd, (off_t)e->log_len) == 0, MR_ERR_IO,
                  "cutting a torn record off the state log failed: %s", strerror(errno));
        e->truncate_needed = false;
    }
    if (mr_ok(write_all(e, e->logfd, batch->data, batch->len, (off_t)e->log_len,
                        "the state log")) &&
        mr_ok(sync_fd(e, e->logfd, "the state log"))) {
        atomic_fetch_add(&e->batches, 1);
        return MR_SUCCESS;
    }
    /* Undo a partial append so a later load sees the previous consistent state. */
    mr_error saved = *mr_error_get();
    if (ftruncate(e->logfd, (off_t)e->log_len) != 0 || do_sync(e, e->logfd) != 0) {
        MR_LOG_ERROR("cannot cut a failed append off the state log; no further commits are "
                     "accepted");
        *broken = true;
    }
    mr_error_restore(&saved);
    return MR_FAILURE;
}

void emb_flushed(emb *e, bool ok, uint64_t end_seq, const uint8_t end_digest[32], size_t nbytes,
                 uint64_t nrecords)
{
    if (ok) {
        e->seq = end_seq;
        memcpy(e->digest, end_digest, 32);
        e->log_len += nbytes;
        e->log_records += nrecords;
    } else {
        mr_buf_free(&e->pending);
        e->pseq = e->seq;
        memcpy(e->pdigest, e->digest, 32);
    }
}

bool emb_wants_compaction(const emb *e)
{
    return e->log_len > e->next_bytes || e->log_records > e->next_records;
}

/* After a failed compaction, wait for another threshold's worth of log before retrying, so
 * a full disk does not turn every commit into a snapshot attempt. */
static void compaction_backoff(emb *e)
{
    e->next_bytes = e->compact_bytes == UINT64_MAX ? UINT64_MAX : e->log_len + e->compact_bytes;
    e->next_records =
        e->compact_records == UINT64_MAX ? UINT64_MAX : e->log_records + e->compact_records;
}

void emb_stats(const emb *e, mr_store_stats *st)
{
    st->batches = atomic_load(&e->batches);
    st->fsyncs = atomic_load(&e->fsyncs);
    st->bytes_written = atomic_load(&e->bytes_written);
    st->log_bytes = e->log_len;
    st->log_records = e->log_records;
    st->compactions = atomic_load(&e->compactions);
    st->torn_bytes_dropped = e->torn_dropped;
}

void emb_free(emb *e)
{
    if (e == NULL)
        return;
    if (e->logfd >= 0)
        close(e->logfd);
    if (e->dirfd >= 0)
        close(e->dirfd);
    mr_hmac_sha256_free(e->hmac);
    mr_secret_free(e->keys, 64);
    mr_buf_free(&e->pending);
    mr_buf_free(&e->scratch);
    mr_buf_free(&e->recbuf);
    mr_free(e);
}

/* ------------------------------------------------------------------------------------------ */
/* snapshot                                                                                   */

typedef struct snap_ctx {
    mr_buf *p;
    uint64_t count;
} snap_ctx;

static MR_RESULT snap_entry(void *ctx, const node *n, const ver *v)
{
    snap_ctx *c = ctx;
    MR_GUARD(mr_buf_append_u32le(c->p, (uint32_t)n->klen));
    MR_GUARD(mr_buf_append(c->p, n->key, n->klen));
    MR_GUARD(mr_buf_append_u32le(c->p, v->len));
    MR_GUARD(mr_buf_append(c->p, v->val, v->len));
    c->count++;
    return MR_SUCCESS;
}

/* Builds the snapshot file image of the store at its durable revision. */
static MR_RESULT build_snapshot(emb *e, kv *k, mr_buf *file)
{
    mr_result res = MR_FAILURE;
    mr_buf p;
    uint8_t nonce[NONCE_LEN], tag[TAG_LEN];
    mr_buf_init(&p, SNAP_PAYLOAD_MAX, MR_BUF_SECRET);
    snap_ctx c = {.p = &p};
    MR_GUARD_OUT(mr_buf_append_u64le(&p, 0));
    MR_GUARD_OUT(kv_visit_durable(k, snap_entry, &c));
    for (int i = 0; i < 8; i++)
        p.data[i] = (uint8_t)(c.count >> (8 * i));
    MR_GUARD_OUT(mr_buf_reserve(file, SNAP_OVERHEAD + p.len));
    MR_GUARD_OUT(mr_buf_append(file, SNAP_MAGIC, 4));
    MR_GUARD_OUT(mr_buf_append_u16le(file, FORMAT_VERSION));
    MR_GUARD_OUT(mr_buf_append_u16le(file, 0));
    MR_GUARD_OUT(mr_buf_append_u64le(file, k->durable_rev));
    MR_GUARD_OUT(mr_buf_append_u64le(file, p.len));
    MR_GUARD_OUT(mr_crypto_random(nonce, NONCE_LEN));
    MR_GUARD_OUT(mr_buf_append(file, nonce, NONCE_LEN));
    size_t ct_off = file->len;
    file->len += p.len;
    MR_GUARD_OUT(gcm_seal(e, nonce, file->data, SNAP_AAD_LEN, p.data, p.len,
                          file->data + ct_off, tag));
    MR_GUARD_OUT(mr_buf_append(file, tag, TAG_LEN));
    res = MR_SUCCESS;
out:
    mr_buf_free(&p);
    return res;
}

MR_RESULT emb_compact(emb *e, kv *k, bool *broken)
{
    mr_result res = MR_FAILURE;
    mr_buf file;
    uint8_t d[32];
    int fd = -1;
    bool renamed = false;
    *broken = false;
    mr_buf_init(&file, SNAP_PAYLOAD_MAX + SNAP_OVERHEAD, 0);
    MR_GUARD_OUT(build_snapshot(e, k, &file));
    MR_GUARD_OUT(mr_sha256(file.data, file.len, d));
    fd = openat(e->dirfd, SNAP_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "creating %s failed: %s", SNAP_TMP, strerror(errno));
    MR_GUARD_OUT(write_all(e, fd, file.data, file.len, 0, "the state snapshot"));
    MR_GUARD_OUT(sync_fd(e, fd, "the state snapshot"));
    MR_ENSURE_OUT(close(fd) == 0, MR_ERR_IO, "closing the state snapshot failed: %s",
                  strerror(errno));
    fd = -1;
    MR_ENSURE_OUT(renameat(e->dirfd, SNAP_TMP, e->dirfd, SNAP_NAME) == 0, MR_ERR_IO,
                  "replacing the state snapshot failed: %s", strerror(errno));
    renamed = true;
    /* From here the snapshot on disk (at least in the page cache) is the new one. The old log
     * stays loadable next to it (it is recognised as stale), but it must not be cut before the
     * rename is durable, and new records must chain to the new snapshot. */
    memcpy(e->digest, d, 32);
    memcpy(e->pdigest, d, 32);
    e->truncate_needed = true;
    e->log_len = 0;
    e->log_records = 0;
    if (!mr_ok(sync_fd(e, e->dirfd, "the seal directory"))) {
        *broken = true;
        goto out;
    }
    if (ftruncate(e->logfd, 0) != 0 || !mr_ok(sync_fd(e, e->logfd, "the state log"))) {
        *broken = true;
        MR_BAIL_OUT(MR_ERR_IO, "emptying the state log failed: %s", strerror(errno));
    }
    e->truncate_needed = false;
    e->next_bytes = e->compact_bytes;
    e->next_records = e->compact_records;
    atomic_fetch_add(&e->compactions, 1);
    MR_LOG_DEBUG("state compacted", MR_F_UINT("revision", k->durable_rev),
                 MR_F_UINT("snapshotBytes", file.len));
    res = MR_SUCCESS;
out:
    if (fd >= 0)
        close(fd);
    if (!renamed)
        (void)unlinkat(e->dirfd, SNAP_TMP, 0);
    if (!mr_ok(res))
        compaction_backoff(e);
    mr_buf_free(&file);
    return res;
}


static MR_RESULT open_dir(const char *dir, int *out)
{
    if (mkdir(dir, 0700) != 0)
        MR_ENSURE(errno == EEXIST, MR_ERR_IO, "creating the seal directory %s failed: %s", dir,
                  strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "opening the seal directory %s failed: %s", dir,
              strerror(errno));
    /* One writer per directory: a second Coordinator (or a second open in this process) on
     * the same files would interleave appends. Released when the store closes or the process
     * dies. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        MR_ENSURE(err != EWOULDBLOCK, MR_ERR_STATE,
                  "the seal directory %s is in use by another store (another Coordinator "
                  "process?)", dir);
        MR_BAIL(MR_ERR_IO, "locking the seal directory %s failed: %s", dir, strerror(err));
    }
    *out = fd;
    return MR_SUCCESS;
}

MR_RESULT mr_store_open_embedded(const char *dir, const uint8_t *dek, size_t dek_len,
                                 const mr_store_options *opts, mr_store **out)
{
    mr_result res = MR_FAILURE;
    kv *k = NULL;
    emb *e = NULL;
    mr_buf snap, log;
    bool exists = false;
    uint64_t snap_rev = 0;
    uint8_t snap_digest[32];
    mr_buf_init(&snap, SNAP_PAYLOAD_MAX + SNAP_OVERHEAD + 1, 0);
    mr_buf_init(&log, SIZE_MAX, 0);
    MR_ENSURE_OUT(dir != NULL && dek != NULL, MR_ERR_USAGE, "store directory or key missing");
    MR_ENSURE_OUT(dek_len == MR_STORE_DEK_LEN, MR_ERR_USAGE, "state key must be %u bytes",
                  MR_STORE_DEK_LEN);
    k = kv_new();
    MR_ENSURE_ALLOC_OUT(k);
    e = mr_calloc(1, sizeof(*e));
    MR_ENSURE_ALLOC_OUT(e);
    e->dirfd = e->logfd = -1;
    mr_buf_init(&e->pending, SIZE_MAX, 0);
    mr_buf_init(&e->scratch, REC_PAYLOAD_MAX, MR_BUF_SECRET);
    mr_buf_init(&e->recbuf, REC_PAYLOAD_MAX + REC_OVERHEAD, 0);
    k->e = e;
    e->keys = mr_secret_alloc(64);
    MR_ENSURE_ALLOC_OUT(e->keys);
    memcpy(DEK(e), dek, 32);
    MR_GUARD_OUT(derive_hkey(dek, HKEY(e)));
    MR_GUARD_OUT(mr_hmac_sha256_new(MR_SLICE(HKEY(e), 32), &e->hmac));
    if (opts != NULL) {
        e->io = opts->io;
        e->no_fsync = opts->no_fsync;
        e->compact_bytes = opts->compact_bytes;
        e->compact_records = opts->compact_records;
    }
    if (e->compact_bytes == 0)
        e->compact_bytes = DEFAULT_COMPACT_BYTES;
    if (e->compact_records == 0)
        e->compact_records = DEFAULT_COMPACT_RECORDS;
    e->next_bytes = e->compact_bytes;
    e->next_records = e->compact_records;
    MR_GUARD_OUT(open_dir(dir, &e->dirfd));

    MR_GUARD_OUT(read_file(e->dirfd, SNAP_NAME, SNAP_PAYLOAD_MAX + SNAP_OVERHEAD, &snap, &exists));
    if (exists) {
        MR_GUARD_OUT(emb_load_snapshot(e, k, &snap, &snap_rev));
        MR_GUARD_OUT(mr_sha256(snap.data, snap.len, snap_digest));
    } else {
        MR_GUARD_OUT(mr_sha256((const uint8_t *)GENESIS_LABEL, sizeof(GENESIS_LABEL) - 1,
                            snap_digest));
    }
    e->logfd = openat(e->dirfd, LOG_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (e->logfd < 0 && errno == ENOENT) {
        e->logfd = openat(e->dirfd, LOG_NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        MR_ENSURE_OUT(e->logfd >= 0, MR_ERR_IO, "creating the state log failed: %s",
                      strerror(errno));
        MR_GUARD_OUT(sync_fd(e, e->dirfd, "the seal directory"));
    }
    MR_ENSURE_OUT(e->logfd >= 0, MR_ERR_IO, "opening the state log failed: %s",
                  strerror(errno));
    MR_GUARD_OUT(read_file(e->dirfd, LOG_NAME, UINT64_MAX, &log, &exists));
    MR_GUARD_OUT(emb_load_log(e, k, &log, snap_rev, snap_digest));
    *out = &k->base;
    k = NULL;
    res = MR_SUCCESS;
out:
    mr_buf_free(&snap);
    mr_buf_free(&log);
    kv_free(k);
    return res;
}

MR_RESULT mr_store_embedded_exists(const char *dir, bool *exists)
{
    struct stat st;
    char path[4096];
    *exists = false;
    MR_ENSURE(dir != NULL, MR_ERR_USAGE, "store directory missing");
    MR_ENSURE(snprintf(path, sizeof(path), "%s/%s", dir, SNAP_NAME) < (int)sizeof(path),
              MR_ERR_USAGE, "seal directory path too long");
    if (stat(path, &st) == 0) {
        *exists = true;
        return MR_SUCCESS;
    }
    MR_ENSURE(errno == ENOENT || errno == ENOTDIR, MR_ERR_IO, "checking %s failed: %s", path,
              strerror(errno));
    MR_ENSURE(snprintf(path, sizeof(path), "%s/%s", dir, LOG_NAME) < (int)sizeof(path),
              MR_ERR_USAGE, "seal directory path too long");
    if (stat(path, &st) == 0) {
        *exists = st.st_size > 0;
        return MR_SUCCESS;
    }
    MR_ENSURE(errno == ENOENT || errno == ENOTDIR, MR_ERR_IO, "checking %s failed: %s", path,
              strerror(errno));
    return MR_SUCCESS;
}

MR_RESULT mr_store_embedded_remove(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT)
        return MR_SUCCESS;
    MR_ENSURE(dfd >= 0, MR_ERR_IO, "opening the seal directory failed: %s", strerror(errno));
    static const char *const names[] = {SNAP_TMP, SNAP_NAME, LOG_NAME};
    for (size_t i = 0; i < MR_ARRAY_LEN(names); i++) {
        if (unlinkat(dfd, names[i], 0) != 0 && errno != ENOENT) {
            int err = errno;
            close(dfd);
            MR_BAIL(MR_ERR_IO, "removing %s failed: %s", names[i], strerror(err));
        }
    }
    int rc = fsync(dfd);
    int err = errno;
    close(dfd);
    MR_ENSURE(rc == 0, MR_ERR_IO, "syncing the seal directory failed: %s", strerror(err));
    return MR_SUCCESS;
}
