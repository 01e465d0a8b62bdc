/* SPDX-License-Identifier: Apache-2.0 */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

MR_RESULT mr_file_read(const char *path, size_t max, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    size_t start = out->len;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "open %s: %s", path, strerror(errno));
    for (;;) {
        uint8_t chunk[16384];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        MR_ENSURE_OUT(n >= 0, MR_ERR_IO, "read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        MR_ENSURE_OUT(out->len - start + (size_t)n <= max, MR_ERR_TOO_LARGE,
                      "%s: file larger than %zu bytes", path, max);
        MR_GUARD_OUT(mr_buf_append(out, chunk, (size_t)n));
    }
    res = MR_SUCCESS;
out:
    close(fd);
    if (!mr_ok(res))
        out->len = start;
    return res;
}

static MR_RESULT write_all(int fd, const uint8_t *p, size_t len, const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        MR_ENSURE(n > 0, MR_ERR_IO, "write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return MR_SUCCESS;
}

static MR_RESULT write_tmp(const char *tmp, const void *data, size_t len, mode_t mode)
{
    mr_result res = MR_FAILURE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "create %s: %s", tmp, strerror(errno));
    MR_GUARD_OUT(write_all(fd, data, len, tmp));
    MR_ENSURE_OUT(fchmod(fd, mode) == 0, MR_ERR_IO, "chmod %s: %s", tmp, strerror(errno));
    MR_ENSURE_OUT(fsync(fd) == 0, MR_ERR_IO, "fsync %s: %s", tmp, strerror(errno));
    res = MR_SUCCESS;
out:
    close(fd);
    return res;
}

static void fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    (void)snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        (void)snprintf(dir, sizeof(dir), ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
}

MR_RESULT mr_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    mr_result res = MR_FAILURE;
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(tmp), MR_ERR_USAGE, "path too long: %s", path);
    MR_GUARD_OUT(write_tmp(tmp, data, len, mode));
    MR_ENSURE_OUT(rename(tmp, path) == 0, MR_ERR_IO, "rename %s: %s", path, strerror(errno));
    fsync_parent(path);
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        (void)unlink(tmp);
    return res;
}

MR_RESULT mr_mkdir_p(const char *path, mode_t mode)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof(p), "%s", path);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(p), MR_ERR_USAGE, "path too long: %s", path);
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            MR_BAIL(MR_ERR_IO, "mkdir %s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST)
        MR_BAIL(MR_ERR_IO, "mkdir %s: %s", p, strerror(errno));
    return MR_SUCCESS;
}
