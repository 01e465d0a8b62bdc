/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/issuer_io.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

MR_RESULT mr_issuer_io_read(const char *path, size_t max, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t start = out->len;
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    for (;;) {
        uint8_t chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        MR_ENSURE_OUT(n >= 0, MR_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        MR_ENSURE_OUT((size_t)n <= max - (out->len - start), MR_ERR_IO,
                      "%s is larger than %zu bytes", path, max);
        MR_GUARD_OUT(mr_buf_append(out, chunk, (size_t)n));
    }
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && out->len > start) {
        /* leave nothing half-read behind (it may be key material) */
        OPENSSL_cleanse(out->data + start, out->len - start);
        out->len = start;
    }
    if (fd >= 0)
        close(fd);
    return res;
}

MR_RESULT mr_issuer_io_write_existing(const char *path, const void *data, size_t len)
{
    mr_result res = MR_FAILURE;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "cannot open %s for writing: %s", path, strerror(errno));
    ssize_t n;
    do {
        n = write(fd, data, len);
    } while (n < 0 && errno == EINTR);
    MR_ENSURE_OUT(n >= 0, MR_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    MR_ENSURE_OUT((size_t)n == len, MR_ERR_IO, "short write to %s (%zd of %zu bytes)", path, n,
                  len);
    MR_ENSURE_OUT(close(fd) == 0, MR_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fd = -1;
    res = MR_SUCCESS;
out:
    if (fd >= 0)
        close(fd);
    return res;
}

MR_RESULT mr_issuer_io_write_new(const char *path, const void *data, size_t len, mode_t mode)
{
    mr_result res = MR_FAILURE;
    const uint8_t *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    /* the file may have existed with a wider mode */
    MR_ENSURE_OUT(fchmod(fd, mode) == 0, MR_ERR_IO, "cannot chmod %s: %s", path,
                  strerror(errno));
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        MR_ENSURE_OUT(n > 0, MR_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    MR_ENSURE_OUT(close(fd) == 0, MR_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fd = -1;
    res = MR_SUCCESS;
out:
    if (fd >= 0)
        close(fd);
    return res;
}

MR_RESULT mr_issuer_io_path(char *out, size_t out_len, const char *a, const char *b)
{
    int n = snprintf(out, out_len, "%s/%s", a, b);
    MR_ENSURE(n > 0 && (size_t)n < out_len, MR_ERR_USAGE, "path too long: %s/%s", a, b);
    return MR_SUCCESS;
}

MR_RESULT mr_issuer_oe_wrap(const uint8_t *quote, size_t quote_len, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    size_t start = out->len;
    MR_GUARD_OUT(mr_buf_append_u32le(out, 1));
    MR_GUARD_OUT(mr_buf_append_u32le(out, 2));
    MR_GUARD_OUT(mr_buf_append_u64le(out, (uint64_t)quote_len));
    MR_GUARD_OUT(mr_buf_append(out, quote, quote_len));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        out->len = start;
    return res;
}
