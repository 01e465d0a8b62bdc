/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-store: the embedded store's loader fed arbitrary snapshot/log bytes with a fixed
 * state key. It must never crash, leak or read out of bounds; it either loads or fails with a
 * clean error.
 *
 * Input, first byte = mode:
 *   0: raw files. u32le snapshot length (0xffffffff = no snapshot file), snapshot bytes, and the
 *      rest is state.log.
 *   1: plaintexts. A sequence of (u16le length, bytes) chunks: the first is the snapshot payload
 *      (empty = no snapshot), each further one a record payload. The harness seals them
 *      correctly (headers, MACs, chain, AES-GCM), so the fuzzer reaches the payload parsers
 *      behind authentication. An odd length byte after the mode flips one bit of the output.
 */
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "coordinator/store/store.h"

static const uint8_t dek[32] = {0x46, 0x55, 0x5a, 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
static char dir[256];
static uint8_t hkey[32];

static void put_file(const char *name, const uint8_t *p, size_t n, int present)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    if (!present)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    if (n > 0 && write(fd, p, n) != (ssize_t)n)
        abort();
    close(fd);
}

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void seal(const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t n, uint8_t *out)
{
    /* out = nonce(12, zero) | ct | tag; fixed nonce is fine for a fuzz harness */
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    memset(out, 0, 12);
    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, dek, out);
    EVP_EncryptUpdate(c, NULL, &l, aad, (int)aadlen);
    if (n > 0)
        EVP_EncryptUpdate(c, out + 12, &l, in, (int)n);
    EVP_EncryptFinal_ex(c, out + 12 + n, &l);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n);
    EVP_CIPHER_CTX_free(c);
}

static void cleanup(void)
{
    put_file("state.snap", NULL, 0, 0);
    put_file("state.log", NULL, 0, 0);
    put_file("state.snap.tmp", NULL, 0, 0);
    rmdir(dir);
}

static void init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fuzz-store-%d", (int)getpid());
    atexit(cleanup);
    mkdir(dir, 0700);
    mr_log_init(MR_LOG_FATAL, MR_LOG_CONSOLE);
    static const char info[] = "MarbleRun-C state log header MAC v1";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)dek, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)info,
                                          sizeof(info) - 1),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(c, hkey, 32, params) != 1)
        abort();
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(kdf);
}

static void build_sealed(const uint8_t *data, size_t size)
{
    mr_buf snap, log;
    mr_buf_init(&snap, 0, 0);
    mr_buf_init(&log, 0, 0);
    uint8_t prev[32];
    uint64_t seq = 0;
    int flip = size > 0 && (data[0] & 1);
    size_t pos = 1, chunk = 0;
    EVP_Digest("MarbleRun-C state genesis v1", 28, prev, NULL, EVP_sha256(), NULL);
    int have_snap = 0;
    while (pos + 2 <= size) {
        size_t n = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
        pos += 2;
        if (n > size - pos)
            n = size - pos;
        const uint8_t *p = data + pos;
        pos += n;
        if (chunk++ == 0) {
            if (n == 0)
                continue;
            uint8_t *f = mr_calloc(1, 24 + 12 + n + 16);
            memcpy(f, "MRSS", 4);
            le(f + 4, 1, 2);
            seq = 7;
            le(f + 8, seq, 8);
            le(f + 16, n, 8);
            seal(f, 24, p, n, f + 24);
            if (mr_ok(mr_buf_append(&snap, f, 24 + 12 + n + 16)))
                have_snap = 1;
            EVP_Digest(f, 24 + 12 + n + 16, prev, NULL, EVP_sha256(), NULL);
            mr_free(f);
            continue;
        }
        size_t total = 68 + 12 + n + 16;
        uint8_t *r = mr_calloc(1, total);
        memcpy(r, "MRLR", 4);
        le(r + 4, 1, 2);
        le(r + 8, ++seq, 8);
        memcpy(r + 16, prev, 32);
        le(r + 48, n, 4);
        uint8_t mac[32];
        unsigned int ml = 0;
        HMAC(EVP_sha256(), hkey, 32, r, 52, mac, &ml);
        memcpy(r + 52, mac, 16);
        seal(r, 52, p, n, r + 68);
        EVP_Digest(r, total, prev, NULL, EVP_sha256(), NULL);
        if (!mr_ok(mr_buf_append(&log, r, total)))
            abort();
        mr_free(r);
    }
    if (flip && log.len > 0)
        log.data[(size * 131u) % log.len] ^= 0x04;
    put_file("state.snap", snap.data, snap.len, have_snap);
    put_file("state.log", log.data, log.len, 1);
    mr_buf_free(&snap);
    mr_buf_free(&log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    if (data[0] == 1) {
        build_sealed(data + 1, size - 1);
    } else {
        mr_cursor c;
        uint32_t slen = 0;
        mr_cursor_init(&c, data + 1, size - 1);
        if (!mr_ok(mr_cursor_u32le(&c, &slen)))
            return 0;
        size_t rem = mr_cursor_remaining(&c);
        int present = slen != 0xffffffffu;
        if (!present)
            slen = 0;
        if (slen > rem)
            slen = (uint32_t)rem;
        put_file("state.snap", data + 5, slen, present);
        put_file("state.log", data + 5 + slen, rem - slen, 1);
    }
    mr_store *s = NULL;
    mr_store_options o = {.no_fsync = true};
    if (mr_ok(mr_store_open_embedded(dir, dek, sizeof(dek), &o, &s))) {
        /* exercise the loaded state a little */
        mr_store_txn *t = NULL;
        mr_store_list l = {0};
        if (mr_ok(mr_store_begin(s, &t))) {
            MR_IGNORE(mr_store_scan(t, "", &l));
            mr_store_list_free(&l);
            mr_store_abort(t);
        }
        mr_store_close(s);
    }
    mr_error_clear();
    return 0;
}
