/* SPDX-License-Identifier: Apache-2.0 */
/* Activation parameters: decoding, validation and all-or-nothing application
 * (spec/marble-cli-k8s.md §1.4 steps 9-11). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "marble/marble_int.h"
#include "proto/coordinator.pb-c.h"

#define TTLS_VAR "MARBLE_TTLS_CONFIG"
#define GRAMINE_KEYS_DIR "/dev/attestation/keys/"
#define GRAMINE_PF_KEY "/dev/attestation/protected_files_key"

/* ---- protobuf-c allocator that wipes what it frees (the answer carries private keys) ---- */

typedef struct alloc_hdr {
    size_t size;
    size_t pad; /* keeps the payload 16-byte aligned */
} alloc_hdr;

static void *wipe_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size > SIZE_MAX - sizeof(alloc_hdr))
        return NULL;
    alloc_hdr *h = mr_alloc(sizeof(alloc_hdr) + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    return h + 1;
}

static void wipe_free(void *ctx, void *p)
{
    (void)ctx;
    if (p == NULL)
        return;
    alloc_hdr *h = (alloc_hdr *)p - 1;
    mr_free_wipe(h, sizeof(alloc_hdr) + h->size);
}

static ProtobufCAllocator g_wipe_allocator = {.alloc = wipe_alloc, .free = wipe_free};

/* ---- params ---- */

static void kv_clear(mr_marble_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mr_free(kv[i].name);
        mr_buf_free(&kv[i].value);
    }
    mr_free(kv);
}

void mr_marble_params_clear(mr_marble_params *p)
{
    kv_clear(p->files, p->n_files);
    kv_clear(p->env, p->n_env);
    for (size_t i = 0; i < p->argc; i++)
        mr_free(p->argv[i]);
    mr_free(p->argv);
    memset(p, 0, sizeof(*p));
}

/* Copies one protobuf map (Files or Env); a later entry with the same key replaces the
 * earlier one (proto3 map semantics). */
static MR_RESULT copy_map(const Rpc__Parameters *p, bool files, mr_marble_kv **out,
                          size_t *count)
{
    size_t n = files ? p->n_files : p->n_env;
    *out = NULL;
    *count = 0;
    if (n == 0)
        return MR_SUCCESS;
    /* the answer comes from the network: bound the work it can cause (duplicate detection is
     * quadratic, each value has its own secret page) */
    MR_ENSURE(n <= MR_MARBLE_ENTRIES_MAX, MR_ERR_PROTOCOL,
              "activation answer has too many %s entries (%zu, limit %d)", files ? "Files" : "Env", n,
              MR_MARBLE_ENTRIES_MAX);
    mr_marble_kv *kv = mr_calloc(n, sizeof(mr_marble_kv));
    MR_ENSURE_ALLOC(kv);
    *out = kv;
    for (size_t i = 0; i < n; i++) {
        const char *key;
        ProtobufCBinaryData v;
        if (files) {
            key = p->files[i]->key;
            v = p->files[i]->value;
        } else {
            key = p->env[i]->key;
            v = p->env[i]->value;
        }
        if (key == NULL)
            key = "";
        size_t k = 0;
        while (k < *count && strcmp(kv[k].name, key) != 0)
            k++;
        if (k == *count) {
            kv[k].name = mr_strdup(key);
            MR_ENSURE_ALLOC(kv[k].name);
            mr_buf_init(&kv[k].value, MR_MARBLE_RESP_MAX, MR_BUF_SECRET);
            (*count)++;
        }
        MR_GUARD(mr_buf_set(&kv[k].value, v.data, v.len));
    }
    return MR_SUCCESS;
}

/* ---- names with NUL bytes (spec §1.4 step 11: refused before anything is applied) ----
 *
 * protobuf-c unpacks proto `string` fields (the map keys of Files and Env, the Argv entries)
 * into NUL-terminated C strings and keeps no length, so a Files key "/etc/a\0/../b" would
 * silently become "/etc/a". The unpacked message cannot tell, hence this check of the wire
 * bytes, run after protobuf-c has accepted the message: it walks ActivationResp.Parameters
 * (field 1), its Files and Env map entries (fields 1 and 2; the key is entry field 1) and Argv
 * (field 3), and refuses any of these strings that contains a NUL byte. It looks at every
 * occurrence of a field, so it covers whatever protobuf-c's merge rules keep. Chosen over a
 * client-only .proto with `bytes` keys, which would need its own protoc-c step and a second
 * copy of the schema that can drift from proto/coordinator.proto; this is a few lines of
 * bounds-checked mr_cursor reading, and fuzzed with the decoder (fuzz/marble). */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static MR_RESULT wire_varint(mr_cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b;
        MR_GUARD(mr_cursor_u8(c, &b));
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_PROTOCOL, "activation answer is not a valid ActivationResp");
}

/* Reads the next field's number; a length-delimited payload is returned in *payload (empty
 * for the other wire types, which are skipped). */
static MR_RESULT wire_field(mr_cursor *c, uint64_t *num, mr_slice *payload)
{
    uint64_t tag, v;
    MR_GUARD(wire_varint(c, &tag));
    *num = tag >> 3;
    *payload = MR_SLICE(NULL, 0);
    switch (tag & 7) {
    case WT_VARINT:
        return wire_varint(c, &v);
    case WT_I64:
        return mr_cursor_skip(c, 8);
    case WT_I32:
        return mr_cursor_skip(c, 4);
    case WT_LEN:
        MR_GUARD(wire_varint(c, &v));
        MR_ENSURE(v <= mr_cursor_remaining(c), MR_ERR_PROTOCOL,
                  "activation answer is not a valid ActivationResp");
        return mr_cursor_view(c, (size_t)v, payload);
    default: /* groups: not in this schema */
        MR_BAIL(MR_ERR_PROTOCOL, "activation answer is not a valid ActivationResp");
    }
}

static MR_RESULT no_nul(mr_slice s, const char *what)
{
    const uint8_t *nul = s.len > 0 ? memchr(s.ptr, '\0', s.len) : NULL;
    if (nul == NULL)
        return MR_SUCCESS;
    size_t at = (size_t)(nul - s.ptr);
    MR_BAIL(MR_ERR_PROTOCOL, "activation answer: %s \"%.*s\" has a NUL byte at offset %zu", what,
            (int)(at < 200 ? at : 200), (const char *)s.ptr, at);
}

/* Calls fn for every field of one message. */
typedef MR_RESULT (*field_fn)(uint64_t num, mr_slice payload);

static MR_RESULT each_field(mr_slice msg, field_fn fn)
{
    mr_cursor c;
    mr_cursor_init(&c, msg.ptr, msg.len);
    while (mr_cursor_remaining(&c) > 0) {
        uint64_t num;
        mr_slice v;
        MR_GUARD(wire_field(&c, &num, &v));
        MR_GUARD(fn(num, v));
    }
    return MR_SUCCESS;
}

/* map entries: the key is field 1 */
static MR_RESULT files_entry(uint64_t num, mr_slice v)
{
    return num == 1 ? no_nul(v, "Files path") : MR_SUCCESS;
}

static MR_RESULT env_entry(uint64_t num, mr_slice v)
{
    return num == 1 ? no_nul(v, "Env name") : MR_SUCCESS;
}

/* Parameters: Files = 1, Env = 2, Argv = 3 */
static MR_RESULT parameters_field(uint64_t num, mr_slice v)
{
    if (num == 1)
        return each_field(v, files_entry);
    if (num == 2)
        return each_field(v, env_entry);
    return num == 3 ? no_nul(v, "Argv entry") : MR_SUCCESS;
}

/* ActivationResp: Parameters = 1 */
static MR_RESULT response_field(uint64_t num, mr_slice v)
{
    return num == 1 ? each_field(v, parameters_field) : MR_SUCCESS;
}

MR_RESULT mr_marble_params_decode(mr_slice resp, mr_marble_params *out)
{
    mr_result res = MR_FAILURE;
    Rpc__ActivationResp *m = NULL;
    memset(out, 0, sizeof(*out));
    MR_ENSURE(resp.len <= MR_MARBLE_RESP_MAX, MR_ERR_PROTOCOL, "activation answer too large");
    m = rpc__activation_resp__unpack(&g_wipe_allocator, resp.len, resp.ptr);
    MR_ENSURE_OUT(m != NULL, MR_ERR_PROTOCOL, "activation answer is not a valid ActivationResp");
    MR_GUARD_OUT(each_field(resp, response_field));
    if (m->parameters != NULL) {
        Rpc__Parameters *p = m->parameters;
        MR_GUARD_OUT(copy_map(p, true, &out->files, &out->n_files));
        MR_GUARD_OUT(copy_map(p, false, &out->env, &out->n_env));
        MR_ENSURE_OUT(p->n_argv <= MR_MARBLE_ENTRIES_MAX, MR_ERR_PROTOCOL,
                      "activation answer has too many Argv entries (%zu, limit %d)", p->n_argv,
                      MR_MARBLE_ENTRIES_MAX);
        if (p->n_argv > 0) {
            out->argv = mr_calloc(p->n_argv + 1, sizeof(char *));
            MR_ENSURE_ALLOC_OUT(out->argv);
            for (size_t i = 0; i < p->n_argv; i++) {
                out->argv[i] = mr_strdup(p->argv[i] != NULL ? p->argv[i] : "");
                MR_ENSURE_ALLOC_OUT(out->argv[i]);
                out->argc++;
            }
        }
    }
    res = MR_SUCCESS;
out:
    if (m != NULL)
        rpc__activation_resp__free_unpacked(m, &g_wipe_allocator);
    if (!mr_ok(res))
        mr_marble_params_clear(out);
    return res;
}

MR_RESULT mr_marble_params_validate(const mr_marble_params *p)
{
    for (size_t i = 0; i < p->n_files; i++) {
        const char *path = p->files[i].name;
        MR_ENSURE(path[0] != '\0', MR_ERR_PROTOCOL, "manifest file with an empty path");
        MR_ENSURE(strlen(path) < PATH_MAX - 32, MR_ERR_PROTOCOL, "file path too long: %.64s...",
                  path);
        size_t len = strlen(path);
        MR_ENSURE(path[len - 1] != '/', MR_ERR_PROTOCOL, "file path names a directory: %s",
                  path);
    }
    for (size_t i = 0; i < p->n_env; i++) {
        const char *name = p->env[i].name;
        MR_ENSURE(name[0] != '\0' && strchr(name, '=') == NULL, MR_ERR_PROTOCOL,
                  "setenv %s: invalid argument", name);
        MR_ENSURE(p->env[i].value.len == 0 ||
                      memchr(p->env[i].value.data, '\0', p->env[i].value.len) == NULL,
                  MR_ERR_PROTOCOL, "setenv %s: invalid argument (NUL byte in value)", name);
    }
    return MR_SUCCESS;
}

/* ---- TTLS (§1.4 step 9, §3.4) ---- */

static size_t object_size(json_t *tls, const char *key)
{
    json_t *v = json_object_get(tls, key);
    return json_is_object(v) ? json_object_size(v) : 0;
}

MR_RESULT mr_marble_params_check_ttls(const mr_marble_params *p)
{
    const mr_marble_kv *kv = NULL;
    for (size_t i = 0; i < p->n_env; i++)
        if (strcmp(p->env[i].name, TTLS_VAR) == 0)
            kv = &p->env[i];
    if (kv == NULL) {
        MR_LOG_INFO("Not using TTLS");
        return MR_SUCCESS;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)kv->value.data, kv->value.len, 0, &jerr);
    MR_ENSURE(root != NULL, MR_ERR_PROTOCOL, "parsing TTLS config: %s", jerr.text);
    json_t *tls = json_object_get(root, "tls");
    size_t n = object_size(tls, "Incoming") + object_size(tls, "Outgoing");
    if (n == 0) {
        json_decref(root);
        MR_BAIL(MR_ERR_PROTOCOL, "TTLS config is empty");
    }
    /* v1.4.1's policy log; libmarble-ttls.so puts it on the wire (mr_marble_ttls_preload) */
    MR_LOG_INFO("TTLS config");
    static const char *const dirs[] = {"Incoming", "Outgoing"};
    for (size_t d = 0; d < 2; d++) {
        json_t *m = json_object_get(tls, dirs[d]);
        if (!json_is_object(m) || json_object_size(m) == 0)
            continue;
        char line[600];
        (void)snprintf(line, sizeof(line), "  %s", dirs[d]);
        MR_LOG_INFO(line);
        const char *key = NULL;
        json_t *v = NULL;
        json_object_foreach(m, key, v) {
            (void)v;
            (void)snprintf(line, sizeof(line), "    %s", key);
            MR_LOG_INFO(line);
        }
    }
    json_decref(root);
    return MR_SUCCESS;
}

/* ---- files ---- */

/* The Gramine key files (§1.4 step 7): 1 = a key under /dev/attestation/keys/, 2 = the
 * Gramine <= 1.2 protected_files_key, 0 = an ordinary file. */
static int gramine_key_kind(const char *path)
{
    if (strncmp(path, GRAMINE_KEYS_DIR, strlen(GRAMINE_KEYS_DIR)) == 0)
        return 1;
    return strcmp(path, GRAMINE_PF_KEY) == 0 ? 2 : 0;
}

static MR_RESULT write_all(int fd, const mr_buf *b, const char *path)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->data + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        MR_ENSURE(w > 0, MR_ERR_IO, "writing %s: %s", path, strerror(errno));
        off += (size_t)w;
    }
    return MR_SUCCESS;
}

/* Gramine keys: must exist before any encrypted file is written, cannot be staged. Go's
 * os.WriteFile(path, data, 0): O_WRONLY|O_CREATE|O_TRUNC, mode 0. */
static MR_RESULT write_direct(const char *path, const mr_buf *value)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "writing %s: %s", path, strerror(errno));
    mr_result r = write_all(fd, value, path);
    (void)close(fd);
    return r;
}

typedef struct staged {
    char tmp[PATH_MAX];
    char target[PATH_MAX]; /* the path renamed onto (symlinks resolved for existing files) */
    bool used;
} staged;

typedef struct dirlist {
    char **paths;
    size_t n;
} dirlist;

/* mkdir -p with 0700, remembering every directory it created (for the rollback). */
static MR_RESULT mkdirs(const char *dir, dirlist *made)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof(buf), "%s", dir);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(buf), MR_ERR_USAGE, "path too long");
    for (char *p = buf + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            struct stat st;
            if (stat(buf, &st) != 0) {
                MR_ENSURE(errno == ENOENT && mkdir(buf, 0700) == 0, MR_ERR_IO,
                          "creating directory %s: %s", buf, strerror(errno));
                char **grown = mr_realloc(made->paths, (made->n + 1) * sizeof(char *));
                MR_ENSURE_ALLOC(grown);
                made->paths = grown;
                made->paths[made->n] = mr_strdup(buf);
                MR_ENSURE_ALLOC(made->paths[made->n]);
                made->n++;
            } else {
                MR_ENSURE(S_ISDIR(st.st_mode), MR_ERR_IO, "creating directory %s: not a directory",
                          buf);
            }
            if (end)
                break;
            *p = '/';
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT stage_file(const char *path, const mr_buf *value, staged *s, dirlist *made)
{
    mr_result res = MR_FAILURE;
    char copy[PATH_MAX], copy2[PATH_MAX];
    struct stat st;
    mode_t mode = 0600;
    int fd = -1;
    int n = snprintf(s->target, sizeof(s->target), "%s", path);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(s->target), MR_ERR_USAGE, "path too long: %s", path);
    if (lstat(path, &st) == 0) {
        /* A symlink planted where a secret goes could send it anywhere: refuse it. */
        MR_ENSURE(!S_ISLNK(st.st_mode), MR_ERR_IO,
                  "writing %s: refusing to write a secret through a symbolic link", path);
        MR_ENSURE(S_ISREG(st.st_mode), MR_ERR_IO, "writing %s: not a regular file", path);
        /* an existing file keeps its owner permissions; group/other and special bits are
         * dropped, since the content may be secret */
        mode = st.st_mode & 0700;
    }
    (void)snprintf(copy, sizeof(copy), "%s", s->target);   /* fits: same size as target */
    (void)snprintf(copy2, sizeof(copy2), "%s", s->target); /* fits */
    char *dir = dirname(copy);
    if (strcmp(dir, ".") != 0 && strcmp(dir, "/") != 0)
        MR_GUARD(mkdirs(dir, made));
    n = snprintf(s->tmp, sizeof(s->tmp), "%s/.%s.premain-XXXXXX", dir, basename(copy2));
    MR_ENSURE(n > 0 && (size_t)n < sizeof(s->tmp), MR_ERR_USAGE, "path too long: %s", path);
    fd = mkstemp(s->tmp);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "writing %s: %s", path, strerror(errno));
    s->used = true;
    MR_GUARD_OUT(write_all(fd, value, path));
    MR_ENSURE_OUT(fchmod(fd, mode) == 0, MR_ERR_IO, "writing %s: %s", path, strerror(errno));
    MR_ENSURE_OUT(fsync(fd) == 0, MR_ERR_IO, "writing %s: %s", path, strerror(errno));
    res = MR_SUCCESS;
out:
    (void)close(fd);
    return res;
}

/* root + name into out (root NULL: name itself). */
static MR_RESULT full_path(const char *root, const char *name, char *out, size_t size)
{
    int n = root == NULL ? snprintf(out, size, "%s", name)
                         : snprintf(out, size, "%s%s%s", root, name[0] == '/' ? "" : "/", name);
    MR_ENSURE(n > 0 && (size_t)n < size, MR_ERR_USAGE, "path too long: %.64s...", name);
    return MR_SUCCESS;
}

MR_RESULT mr_marble_apply_files_at(const mr_marble_params *p, mr_marble_runtime rt,
                                   const char *root)
{
    mr_result res = MR_FAILURE;
    staged *st = NULL;
    dirlist made = {0};
    size_t renamed = 0;
    char path[PATH_MAX];
    MR_LOG_INFO("creating files from manifest");
    if (p->n_files == 0)
        return MR_SUCCESS;
    st = mr_calloc(p->n_files, sizeof(staged));
    MR_ENSURE_ALLOC(st);
    /* Gramine only: the keys, then protected_files_key, in that order whatever the map
     * order; they leave the set of files applied below (GramineActivate deletes them from
     * the map). Elsewhere they are ordinary files. */
    bool gramine = rt == MR_RT_GRAMINE;
    for (int kind = 1; gramine && kind <= 2; kind++) {
        for (size_t i = 0; i < p->n_files; i++) {
            if (gramine_key_kind(p->files[i].name) != kind)
                continue;
            MR_GUARD_OUT(full_path(root, p->files[i].name, path, sizeof(path)));
            MR_GUARD_OUT(write_direct(path, &p->files[i].value));
        }
    }
    for (size_t i = 0; i < p->n_files; i++) {
        if (gramine && gramine_key_kind(p->files[i].name) != 0)
            continue;
        MR_GUARD_OUT(full_path(root, p->files[i].name, path, sizeof(path)));
        MR_GUARD_OUT(stage_file(path, &p->files[i].value, &st[i], &made));
    }
    for (size_t i = 0; i < p->n_files; i++) {
        if (!st[i].used)
            continue;
        MR_ENSURE_OUT(rename(st[i].tmp, st[i].target) == 0, MR_ERR_IO, "writing %s: %s",
                      st[i].target, strerror(errno));
        st[i].used = false;
        renamed++;
    }
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && renamed > 0)
        MR_LOG_ERROR("a file could not be renamed into place after others were",
                     MR_F_UINT("renamed", renamed));
    for (size_t i = 0; st != NULL && i < p->n_files; i++)
        if (st[i].used)
            (void)unlink(st[i].tmp);
    for (size_t i = made.n; i > 0; i--) {
        if (!mr_ok(res) && renamed == 0)
            (void)rmdir(made.paths[i - 1]);
        mr_free(made.paths[i - 1]);
    }
    mr_free(made.paths);
    mr_free(st);
    return res;
}

MR_RESULT mr_marble_apply_files(const mr_marble_params *p, mr_marble_runtime rt)
{
    return mr_marble_apply_files_at(p, rt, NULL);
}

MR_RESULT mr_marble_apply_env(const mr_marble_params *p)
{
    mr_buf v;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    MR_LOG_INFO("setting env vars from manifest");
    for (size_t i = 0; i < p->n_env; i++) {
        mr_buf_reset(&v);
        if (!mr_ok(mr_buf_set(&v, p->env[i].value.data, p->env[i].value.len)) ||
            !mr_ok(mr_buf_nul_terminate(&v))) {
            mr_buf_free(&v);
            return MR_FAILURE;
        }
        const char *val = v.data != NULL ? (const char *)v.data : "";
        if (setenv(p->env[i].name, val, 1) != 0) {
            mr_buf_free(&v);
            MR_BAIL(MR_ERR_IO, "setenv %s: %s", p->env[i].name, strerror(errno));
        }
    }
    mr_buf_free(&v);
    return MR_SUCCESS;
}
