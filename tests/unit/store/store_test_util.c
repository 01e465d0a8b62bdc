/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "store_test_util.h"

const uint8_t st_dek[MR_STORE_DEK_LEN] = {
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0xcc, 0xdd, 0xee, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
};

char *st_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/mrstore-XXXXXX", base != NULL ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return mr_strdup(d);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

void st_rmdir(char *dir)
{
    if (dir == NULL)
        return;
    rm_tree(dir);
    mr_free(dir);
}

void st_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

uint8_t *st_read(const char *dir, const char *name, size_t *len)
{
    char p[1024];
    st_path(p, sizeof(p), dir, name);
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        fail_msg("open %s: %s", p, strerror(errno));
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *buf = mr_alloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

void st_write(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char p[1024];
    st_path(p, sizeof(p), dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        fail_msg("open %s: %s", p, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(fd);
}

bool st_exists(const char *dir, const char *name)
{
    char p[1024];
    struct stat st;
    st_path(p, sizeof(p), dir, name);
    return stat(p, &st) == 0;
}

void st_put(mr_store *s, const char *key, const char *val)
{
    MR_ASSERT_OK(mr_store_put1(s, key, (const uint8_t *)val, strlen(val)));
}

void st_del(mr_store *s, const char *key)
{
    mr_store_txn *t = NULL;
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(mr_store_delete(t, key));
    MR_ASSERT_OK(mr_store_commit(t));
}

char *st_dump(mr_store *s)
{
    mr_store_txn *t = NULL;
    mr_store_list l = {0};
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(mr_store_scan(t, "", &l));
    for (size_t i = 0; i < l.count; i++) {
        MR_ASSERT_OK(mr_buf_append_str(&out, l.items[i].key));
        MR_ASSERT_OK(mr_buf_append_str(&out, "="));
        MR_ASSERT_OK(mr_buf_append(&out, l.items[i].value.ptr, l.items[i].value.len));
        MR_ASSERT_OK(mr_buf_append_str(&out, "\n"));
    }
    MR_ASSERT_OK(mr_buf_nul_terminate(&out));
    mr_store_list_free(&l);
    mr_store_abort(t);
    if (out.data == NULL)
        return mr_strdup("");
    size_t len = 0;
    return (char *)mr_buf_steal(&out, &len);
}
