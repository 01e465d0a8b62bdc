/* SPDX-License-Identifier: Apache-2.0 */
/* The marble UUID file (spec/marble-cli-k8s.md §1.3). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "common/log.h"
#include "marble/marble_int.h"

#define UUID_FILE_MAX 4096 /* far more than any accepted form; longer files fail on length */

MR_RESULT mr_marble_uuid_parse_file(const uint8_t *data, size_t len, mr_uuid *out)
{
    /* Go's uuid.UnmarshalText: the exact bytes, no trimming. */
    return mr_uuid_parse((const char *)data, len, out);
}

static MR_RESULT create_file(const char *path, mr_uuid *out)
{
    mr_uuid u;
    char text[MR_UUID_TEXT_LEN + 1];
    MR_GUARD(mr_uuid_random(&u));
    mr_uuid_format(&u, text);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "writing UUID file %s: %s", path, strerror(errno));
    ssize_t w = write(fd, text, MR_UUID_TEXT_LEN);
    int err = errno;
    int sync_rc = w == MR_UUID_TEXT_LEN ? fsync(fd) : -1;
    (void)close(fd);
    if (w != MR_UUID_TEXT_LEN || sync_rc != 0) {
        (void)unlink(path);
        MR_BAIL(MR_ERR_IO, "writing UUID file %s: %s", path,
                w < 0 ? strerror(err) : "short write");
    }
    *out = u;
    return MR_SUCCESS;
}

/* Reads the opened UUID file into content; an over-long file is a length error, as Go
 * reports it. */
static MR_RESULT read_uuid_fd(int fd, const char *path, const struct stat *st, mr_buf *content)
{
    for (;;) {
        uint8_t chunk[128];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        MR_ENSURE(n >= 0, MR_ERR_IO, "reading UUID file %s: %s", path, strerror(errno));
        if (n == 0)
            return MR_SUCCESS;
        if (!mr_ok(mr_buf_append(content, chunk, (size_t)n))) {
            MR_ENSURE(!mr_error_is(MR_ERR_TOO_LARGE), MR_ERR_USAGE,
                      "parsing UUID file %s: invalid UUID length: %lld", path,
                      (long long)st->st_size);
            return MR_FAILURE;
        }
    }
}

MR_RESULT mr_marble_uuid_load(const char *path, mr_uuid *out, bool *created)
{
    mr_result res = MR_FAILURE;
    mr_buf content;
    struct stat st;
    mr_buf_init(&content, UUID_FILE_MAX, 0);
    *created = false;
    /* open first, then check what was opened: no window between the check and the read
     * (O_NONBLOCK: a FIFO swapped in cannot block the premain) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        MR_ENSURE_OUT(errno == ENOENT, MR_ERR_IO, "reading UUID file %s: %s", path,
                      strerror(errno));
        MR_LOG_INFO("UUID not found. Generating and storing a new UUID");
        MR_GUARD_OUT(create_file(path, out));
        *created = true;
        res = MR_SUCCESS;
        goto out;
    }
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    mr_result rr = regular ? read_uuid_fd(fd, path, &st, &content) : MR_SUCCESS;
    (void)close(fd);
    MR_ENSURE_OUT(regular, MR_ERR_IO, "reading UUID file %s: not a regular file", path);
    MR_GUARD_OUT(rr);
    if (!mr_ok(mr_marble_uuid_parse_file(content.data, content.len, out))) {
        mr_error_prefix("parsing UUID file %s", path);
        goto out;
    }
    char text[MR_UUID_TEXT_LEN + 1];
    char line[64];
    mr_uuid_format(out, text);
    (void)snprintf(line, sizeof(line), "found UUID: %s", text);
    MR_LOG_INFO(line);
    res = MR_SUCCESS;
out:
    mr_buf_free(&content);
    return res;
}
