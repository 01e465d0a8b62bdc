/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KEK providers and the sealed_key file. Layout (docs/state-format.md §4):
 *   "MRDK" | u16le version=1 | u16le provider | nonce[12] | AES-256-GCM(KEK, DEK)[32] | tag[16]
 *   AAD = the first 8 bytes || "MarbleRun-C sealed state key v1"
 */
#include "coordinator/seal/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/log.h"
#include "coordinator/store/store.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/rand.h"

#define SEALED_KEY "sealed_key"
#define SEALED_KEY_TMP "sealed_key.tmp"
#define DEK_MAGIC "MRDK"
#define DEK_VERSION 1
#define DEK_FILE_LEN 68 /* 8 header + 12 nonce + 32 ciphertext + 16 tag */
#define KEK_LEN 32
#define SGX_KEY_LEN 16
#define DEK_AAD_LEN (8 + sizeof(AAD_LABEL) - 1)
#define DEFAULT_GRAMINE_DIR "/dev/attestation/keys"

static const char AAD_LABEL[] = "MarbleRun-C sealed state key v1";

enum { PROV_FILE = 1, PROV_GRAMINE_MRSIGNER = 2, PROV_GRAMINE_MRENCLAVE = 3 };

struct mr_sealer {
    char *dir;
    char *kek_path; /* file provider */
    char *gramine_dir;
    mr_kek_kind kind;
    mr_seal_mode mode;
    uint8_t *dek; /* secret, MR_STORE_DEK_LEN, or NULL */
    char reason[MR_ERR_MSG_MAX];
};

/* ------------------------------------------------------------------------------------------ */

static MR_RESULT path_join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    MR_ENSURE(n > 0 && (size_t)n < cap, MR_ERR_USAGE, "path too long");
    return MR_SUCCESS;
}

static MR_RESULT fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s", path);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(dir), MR_ERR_USAGE, "path too long");
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "opening %s failed: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    MR_ENSURE(rc == 0, MR_ERR_IO, "syncing %s failed: %s", dir, strerror(err));
    return MR_SUCCESS;
}

/* Reads exactly n bytes of a small file. *missing = true (and success) when it is absent. */
static MR_RESULT read_exact(const char *path, uint8_t *out, size_t n, bool *missing,
                            bool *wrong_size)
{
    uint8_t extra;
    *missing = false;
    *wrong_size = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        *missing = true;
        return MR_SUCCESS;
    }
    MR_ENSURE(fd >= 0, MR_ERR_IO, "opening %s failed: %s", path, strerror(errno));
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, out + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = errno;
            close(fd);
            if (r == 0) {
                *wrong_size = true;
                return MR_SUCCESS;
            }
            MR_BAIL(MR_ERR_IO, "reading %s failed: %s", path, strerror(err));
        }
        got += (size_t)r;
    }
    ssize_t r = read(fd, &extra, 1);
    close(fd);
    if (r != 0)
        *wrong_size = true;
    return MR_SUCCESS;
}

/* Writes a file atomically (tmp + fsync + rename + directory fsync), mode 0600. */
static MR_RESULT write_atomic(const char *dir, const char *name, const char *tmpname,
                              const uint8_t *data, size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    MR_GUARD(path_join(path, sizeof(path), dir, name));
    MR_GUARD(path_join(tmp, sizeof(tmp), dir, tmpname));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "creating %s failed: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = errno;
            close(fd);
            unlink(tmp);
            MR_BAIL(MR_ERR_IO, "writing %s failed: %s", tmp, strerror(err));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int err = errno;
        unlink(tmp);
        MR_BAIL(MR_ERR_IO, "syncing %s failed: %s", tmp, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        MR_BAIL(MR_ERR_IO, "replacing %s failed: %s", path, strerror(err));
    }
    return fsync_dir_of(path);
}

static void set_reason(mr_sealer *s, const char *fmt, ...) MR_PRINTF(2, 3);
static void set_reason(mr_sealer *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(s->reason, sizeof(s->reason), fmt, ap) < 0)
        s->reason[0] = '\0';
    va_end(ap);
}

/* ------------------------------------------------------------------------------------------ */
/* KEK providers                                                                              */

static MR_RESULT hkdf32(const uint8_t *ikm, size_t ikm_len, const char *info, uint8_t *out)
{
    static const char salt[] = "MarbleRun-C KEK";
    return mr_hkdf_sha256_raw(MR_SLICE(ikm, ikm_len), MR_SLICE(salt, sizeof(salt) - 1),
                              MR_SLICE_STR(info), out, KEK_LEN);
}

static MR_RESULT create_kek_file(const char *path)
{
    uint8_t key[KEK_LEN];
    mr_result res = MR_FAILURE;
    int fd = -1;
    MR_GUARD_OUT(mr_crypto_random_key(key, sizeof(key)));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "creating the key file %s failed: %s", path,
                  strerror(errno));
    MR_ENSURE_OUT(write(fd, key, sizeof(key)) == (ssize_t)sizeof(key) && fsync(fd) == 0,
                  MR_ERR_IO, "writing the key file %s failed: %s", path, strerror(errno));
    MR_GUARD_OUT(fsync_dir_of(path));
    MR_LOG_WARN("created a new key-encryption key file (development / non-enclave use only)",
                MR_F_STR("path", path));
    res = MR_SUCCESS;
out:
    if (fd >= 0)
        close(fd);
    if (!mr_ok(res) && fd >= 0)
        unlink(path);
    OPENSSL_cleanse(key, sizeof(key));
    return res;
}

/* The file provider: the KEK is the content of the key file (created when allowed). */
static MR_RESULT kek_from_file(mr_sealer *s, bool create, uint8_t *kek, bool *unavailable)
{
    bool missing = false, wrong = false;
    MR_GUARD(read_exact(s->kek_path, kek, KEK_LEN, &missing, &wrong));
    if (missing && create) {
        MR_GUARD(create_kek_file(s->kek_path));
        MR_GUARD(read_exact(s->kek_path, kek, KEK_LEN, &missing, &wrong));
    }
    if (missing || wrong) {
        set_reason(s, "the key-encryption key file %s is %s",
                 s->kek_path, missing ? "missing" : "not 32 bytes long");
        *unavailable = true;
    }
    return MR_SUCCESS;
}

/* The Gramine providers: the KEK is derived from the enclave's SGX sealing key. */
static MR_RESULT kek_from_gramine(mr_sealer *s, int prov, uint8_t *kek, bool *unavailable)
{
    mr_result res = MR_FAILURE;
    bool missing = false, wrong = false;
    const char *name = prov == PROV_GRAMINE_MRSIGNER ? "_sgx_mrsigner" : "_sgx_mrenclave";
    char path[PATH_MAX];
    uint8_t sgx[SGX_KEY_LEN];
    MR_GUARD(path_join(path, sizeof(path), s->gramine_dir, name));
    MR_GUARD_OUT(read_exact(path, sgx, sizeof(sgx), &missing, &wrong));
    if (missing || wrong) {
        set_reason(s, "the SGX sealing key %s is %s", path,
                 missing ? "not available (not running in a Gramine enclave?)"
                         : "not 16 bytes long");
        *unavailable = true;
    } else {
        char info[64];
        (void)snprintf(info, sizeof(info), "MarbleRun-C KEK v1 %s", name + 1); /* fits */
        MR_GUARD_OUT(hkdf32(sgx, sizeof(sgx), info, kek));
    }
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(sgx, sizeof(sgx));
    return res;
}

/* Obtains the KEK for provider id `prov`. *unavailable (with s->reason) when the key source
 * does not exist here; create allows the file provider to make a new key file. */
static MR_RESULT get_kek(mr_sealer *s, int prov, bool create, uint8_t *kek, bool *unavailable)
{
    *unavailable = false;
    if (prov == PROV_FILE)
        return kek_from_file(s, create, kek, unavailable);
    return kek_from_gramine(s, prov, kek, unavailable);
}

static int provider_for(const mr_sealer *s)
{
    if (s->kind == MR_KEK_FILE)
        return PROV_FILE;
    return s->mode == MR_SEAL_MODE_UNIQUE_KEY ? PROV_GRAMINE_MRENCLAVE : PROV_GRAMINE_MRSIGNER;
}

/* ------------------------------------------------------------------------------------------ */
/* sealed_key                                                                                 */

/* AAD = the 8 header bytes || AAD_LABEL */
static void dek_aad(const uint8_t *hdr, uint8_t aad[DEK_AAD_LEN])
{
    memcpy(aad, hdr, 8);
    memcpy(aad + 8, AAD_LABEL, sizeof(AAD_LABEL) - 1);
}

/* Writes sealed_key for the installed DEK with the current provider/mode; removes it when
 * nothing is to be sealed. */
static MR_RESULT seal_dek(mr_sealer *s)
{
    mr_result res = MR_FAILURE;
    uint8_t *kek = NULL;
    uint8_t file[DEK_FILE_LEN], aad[DEK_AAD_LEN];
    bool unavailable = false;
    char path[PATH_MAX];
    MR_ENSURE_OUT(s->dek != NULL, MR_ERR_STATE, "no state key installed");
    if (s->kind == MR_KEK_NONE || s->mode == MR_SEAL_MODE_DISABLED) {
        MR_GUARD_OUT(path_join(path, sizeof(path), s->dir, SEALED_KEY));
        MR_ENSURE_OUT(unlink(path) == 0 || errno == ENOENT, MR_ERR_IO, "removing %s failed: %s",
                      path, strerror(errno));
        res = MR_SUCCESS;
        goto out;
    }
    int prov = provider_for(s);
    kek = mr_secret_alloc(KEK_LEN);
    MR_ENSURE_ALLOC_OUT(kek);
    MR_GUARD_OUT(get_kek(s, prov, true, kek, &unavailable));
    MR_ENSURE_OUT(!unavailable, MR_ERR_IO, "cannot seal the state key: %s", s->reason);
    memcpy(file, DEK_MAGIC, 4);
    file[4] = DEK_VERSION;
    file[5] = 0;
    file[6] = (uint8_t)prov;
    file[7] = 0;
    dek_aad(file, aad);
    MR_GUARD_OUT(mr_crypto_random(file + 8, MR_AEAD_NONCE_LEN));
    MR_GUARD_OUT(mr_aead_encrypt(MR_SLICE(kek, KEK_LEN), file + 8, MR_SLICE(aad, sizeof(aad)),
                                 MR_SLICE(s->dek, MR_STORE_DEK_LEN), file + 20, file + 52));
    MR_GUARD_OUT(write_atomic(s->dir, SEALED_KEY, SEALED_KEY_TMP, file, sizeof(file)));
    res = MR_SUCCESS;
out:
    mr_secret_free(kek, KEK_LEN);
    return res;
}

/* Unseals sealed_key into a new secret buffer. *unavailable with s->reason when it cannot. */
static MR_RESULT unseal_dek(mr_sealer *s, uint8_t **dek_out, bool *unavailable)
{
    mr_result res = MR_FAILURE;
    uint8_t file[DEK_FILE_LEN], aad[DEK_AAD_LEN];
    uint8_t *kek = NULL, *dek = NULL;
    bool missing = false, wrong = false;
    char path[PATH_MAX];
    *unavailable = true;
    if (s->kind == MR_KEK_NONE) {
        snprintf(s->reason, sizeof(s->reason),
                 "sealing is disabled (EDG_COORDINATOR_KEK=none); the state must be recovered");
        res = MR_SUCCESS;
        goto out;
    }
    MR_GUARD_OUT(path_join(path, sizeof(path), s->dir, SEALED_KEY));
    MR_GUARD_OUT(read_exact(path, file, sizeof(file), &missing, &wrong));
    if (missing || wrong) {
        set_reason(s, "%s is %s", path,
                 missing ? "missing (state sealed with SealMode Disabled or key file removed)"
                         : "malformed");
        res = MR_SUCCESS;
        goto out;
    }
    int prov = file[6] | (file[7] << 8);
    if (CRYPTO_memcmp(file, DEK_MAGIC, 4) != 0 || file[4] != DEK_VERSION || file[5] != 0 ||
        prov < PROV_FILE || prov > PROV_GRAMINE_MRENCLAVE) {
        set_reason(s, "%s has an unknown format", path);
        res = MR_SUCCESS;
        goto out;
    }
    if ((prov == PROV_FILE) != (s->kind == MR_KEK_FILE)) {
        set_reason(s, "%s was sealed by the %s provider, but %s is "
                 "configured", path, prov == PROV_FILE ? "file" : "gramine",
                 s->kind == MR_KEK_FILE ? "file" : "gramine");
        res = MR_SUCCESS;
        goto out;
    }
    kek = mr_secret_alloc(KEK_LEN);
    dek = mr_secret_alloc(MR_STORE_DEK_LEN);
    MR_ENSURE_ALLOC_OUT(kek);
    MR_ENSURE_ALLOC_OUT(dek);
    bool kek_missing = false;
    MR_GUARD_OUT(get_kek(s, prov, false, kek, &kek_missing));
    if (kek_missing) {
        res = MR_SUCCESS;
        goto out;
    }
    dek_aad(file, aad);
    if (!mr_ok(mr_aead_decrypt(MR_SLICE(kek, KEK_LEN), file + 8, MR_SLICE(aad, sizeof(aad)),
                               MR_SLICE(file + 20, MR_STORE_DEK_LEN), file + 52, dek))) {
        if (mr_error_get()->cat != MR_ERR_AUTH)
            goto out;
        mr_error_clear();
        snprintf(s->reason, sizeof(s->reason),
                 "the state key cannot be unsealed with this key-encryption key (different "
                 "host, enclave, signer or key file)");
        res = MR_SUCCESS;
        goto out;
    }
    s->mode = prov == PROV_GRAMINE_MRENCLAVE ? MR_SEAL_MODE_UNIQUE_KEY : MR_SEAL_MODE_PRODUCT_KEY;
    *unavailable = false;
    *dek_out = dek;
    dek = NULL;
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(file, sizeof(file));
    mr_secret_free(kek, KEK_LEN);
    mr_secret_free(dek, MR_STORE_DEK_LEN);
    return res;
}

/* ------------------------------------------------------------------------------------------ */

static MR_RESULT default_dir(char **out)
{
    const char *d = mr_config_get("EDG_COORDINATOR_SEAL_DIR");
    if (d != NULL) {
        *out = mr_strdup(d);
        MR_ENSURE_ALLOC(*out);
        return MR_SUCCESS;
    }
    char cwd[PATH_MAX], buf[PATH_MAX];
    const char *base = mr_config_get("EDG_CWD");
    if (base == NULL) {
        MR_ENSURE(getcwd(cwd, sizeof(cwd)) != NULL, MR_ERR_IO,
                  "cannot determine the working directory: %s", strerror(errno));
        base = cwd;
    }
    MR_GUARD(path_join(buf, sizeof(buf), base, "marblerun-coordinator-data"));
    *out = mr_strdup(buf);
    MR_ENSURE_ALLOC(*out);
    return MR_SUCCESS;
}

static MR_RESULT parse_kek(mr_sealer *s, const char *spec)
{
    char buf[PATH_MAX];
    if (spec == NULL) {
        MR_GUARD(path_join(buf, sizeof(buf), s->dir, "kek"));
        s->kind = MR_KEK_FILE;
        s->kek_path = mr_strdup(buf);
        MR_ENSURE_ALLOC(s->kek_path);
    } else if (strcmp(spec, "gramine") == 0) {
        s->kind = MR_KEK_GRAMINE;
    } else if (strcmp(spec, "none") == 0) {
        s->kind = MR_KEK_NONE;
    } else if (strncmp(spec, "file:", 5) == 0 && spec[5] != '\0') {
        s->kind = MR_KEK_FILE;
        s->kek_path = mr_strdup(spec + 5);
        MR_ENSURE_ALLOC(s->kek_path);
    } else {
        MR_BAIL(MR_ERR_USAGE,
                "EDG_COORDINATOR_KEK: unknown key-encryption key provider \"%s\" (use gramine, "
                "file:<path> or none)", spec);
    }
    return MR_SUCCESS;
}

MR_RESULT mr_sealer_open(const mr_seal_config *cfg, mr_sealer **out)
{
    mr_result res = MR_FAILURE;
    mr_sealer *s = mr_calloc(1, sizeof(*s));
    struct stat st;
    MR_ENSURE_ALLOC_OUT(s);
    if (cfg != NULL && cfg->seal_dir != NULL) {
        s->dir = mr_strdup(cfg->seal_dir);
        MR_ENSURE_ALLOC_OUT(s->dir);
    } else {
        MR_GUARD_OUT(default_dir(&s->dir));
    }
    s->gramine_dir = mr_strdup(cfg != NULL && cfg->gramine_keys_dir != NULL
                                   ? cfg->gramine_keys_dir : DEFAULT_GRAMINE_DIR);
    MR_ENSURE_ALLOC_OUT(s->gramine_dir);
    s->mode = cfg != NULL ? cfg->mode : MR_SEAL_MODE_PRODUCT_KEY;
    MR_GUARD_OUT(parse_kek(s, cfg != NULL && cfg->kek != NULL ? cfg->kek
                                                              : mr_config_get("EDG_COORDINATOR_KEK")));
    if (mkdir(s->dir, 0700) == 0)
        MR_GUARD_OUT(fsync_dir_of(s->dir)); /* make the new directory entry durable */
    else
        MR_ENSURE_OUT(errno == EEXIST, MR_ERR_IO, "creating the seal directory %s failed: %s",
                      s->dir, strerror(errno));
    MR_ENSURE_OUT(stat(s->dir, &st) == 0 && S_ISDIR(st.st_mode), MR_ERR_IO,
                  "the seal directory %s is not a directory", s->dir);
    if ((st.st_mode & 077) != 0)
        MR_LOG_WARN("the seal directory is accessible to other users", MR_F_STR("dir", s->dir));
    if (s->kind == MR_KEK_FILE)
        MR_LOG_WARN("WARNING: the state key is sealed with a key-encryption key from a plain "
                    "file. This is for development and non-enclave use only: anyone who can "
                    "read the file can decrypt the Coordinator's state.",
                    MR_F_STR("keyFile", s->kek_path));
    else if (s->kind == MR_KEK_NONE)
        MR_LOG_WARN("sealing is disabled: a restart of the Coordinator requires recovery");
    *out = s;
    s = NULL;
    res = MR_SUCCESS;
out:
    mr_sealer_free(s);
    return res;
}

void mr_sealer_free(mr_sealer *s)
{
    if (s == NULL)
        return;
    mr_secret_free(s->dek, MR_STORE_DEK_LEN);
    mr_free(s->dir);
    mr_free(s->kek_path);
    mr_free(s->gramine_dir);
    mr_free(s);
}

const char *mr_sealer_dir(const mr_sealer *s) { return s->dir; }
mr_kek_kind mr_sealer_kek_kind(const mr_sealer *s) { return s->kind; }
mr_seal_mode mr_sealer_mode(const mr_sealer *s) { return s->mode; }
const char *mr_sealer_reason(const mr_sealer *s) { return s->reason; }
bool mr_sealer_has_dek(const mr_sealer *s) { return s->dek != NULL; }

static void install_dek(mr_sealer *s, uint8_t *dek)
{
    mr_secret_free(s->dek, MR_STORE_DEK_LEN);
    s->dek = dek;
}

/* Opens the embedded store with dek; a verification failure becomes *invalid + reason. */
static MR_RESULT try_open(mr_sealer *s, const uint8_t *dek, const mr_store_options *opts,
                          mr_store **store, bool *invalid)
{
    *invalid = false;
    if (mr_ok(mr_store_open_embedded(s->dir, dek, MR_STORE_DEK_LEN, opts, store)))
        return MR_SUCCESS;
    if (mr_error_get()->cat != MR_ERR_PROTOCOL)
        return MR_FAILURE;
    set_reason(s, "%s", mr_error_get()->msg);
    mr_error_clear();
    *invalid = true;
    return MR_SUCCESS;
}

MR_RESULT mr_sealer_load(mr_sealer *s, const mr_store_options *opts, mr_seal_outcome *outcome,
                         mr_store **store)
{
    mr_result res = MR_FAILURE;
    uint8_t *dek = NULL;
    bool exists = false, unavailable = false, invalid = false;
    s->reason[0] = '\0';
    *store = NULL;
    MR_GUARD_OUT(mr_store_embedded_exists(s->dir, &exists));
    if (!exists) {
        *outcome = MR_SEAL_NO_STATE;
        res = MR_SUCCESS;
        goto out;
    }
    MR_GUARD_OUT(unseal_dek(s, &dek, &unavailable));
    if (unavailable) {
        MR_LOG_WARN("sealed state found, but its key cannot be unsealed; entering recovery mode",
                    MR_F_STR("reason", s->reason));
        *outcome = MR_SEAL_KEY_UNAVAILABLE;
        res = MR_SUCCESS;
        goto out;
    }
    MR_GUARD_OUT(try_open(s, dek, opts, store, &invalid));
    if (invalid) {
        MR_LOG_ERROR("the state key was unsealed, but the sealed state does not verify; entering "
                     "recovery mode", MR_F_STR("reason", s->reason));
        *outcome = MR_SEAL_STATE_INVALID;
        res = MR_SUCCESS;
        goto out;
    }
    install_dek(s, dek);
    dek = NULL;
    *outcome = MR_SEAL_LOADED;
    res = MR_SUCCESS;
out:
    mr_secret_free(dek, MR_STORE_DEK_LEN);
    return res;
}

MR_RESULT mr_sealer_create(mr_sealer *s, const mr_store_options *opts, mr_store **store)
{
    mr_result res = MR_FAILURE;
    uint8_t *dek = mr_secret_alloc(MR_STORE_DEK_LEN);
    MR_ENSURE_ALLOC_OUT(dek);
    MR_GUARD_OUT(mr_crypto_random_key(dek, MR_STORE_DEK_LEN));
    /* Old state first: a crash in between then leaves "no state" rather than a new key next
     * to an old state. */
    MR_GUARD_OUT(mr_store_embedded_remove(s->dir));
    install_dek(s, dek);
    dek = NULL;
    MR_GUARD_OUT(seal_dek(s));
    MR_GUARD_OUT(mr_store_open_embedded(s->dir, s->dek, MR_STORE_DEK_LEN, opts, store));
    s->reason[0] = '\0';
    res = MR_SUCCESS;
out:
    mr_secret_free(dek, MR_STORE_DEK_LEN);
    return res;
}

MR_RESULT mr_sealer_recover(mr_sealer *s, const uint8_t *dek, size_t len,
                            const mr_store_options *opts, mr_seal_outcome *outcome,
                            mr_store **store)
{
    mr_result res = MR_FAILURE;
    bool exists = false, invalid = false;
    uint8_t *copy = NULL;
    mr_store *st = NULL;
    *store = NULL;
    MR_ENSURE_OUT(dek != NULL && len == MR_STORE_DEK_LEN, MR_ERR_USAGE,
                  "recovery key must be %u bytes", MR_STORE_DEK_LEN);
    MR_GUARD_OUT(mr_store_embedded_exists(s->dir, &exists));
    if (!exists) {
        *outcome = MR_SEAL_NO_STATE;
        res = MR_SUCCESS;
        goto out;
    }
    MR_GUARD_OUT(try_open(s, dek, opts, &st, &invalid));
    if (invalid) {
        *outcome = MR_SEAL_STATE_INVALID;
        res = MR_SUCCESS;
        goto out;
    }
    copy = mr_secret_alloc(MR_STORE_DEK_LEN);
    MR_ENSURE_ALLOC_OUT(copy);
    memcpy(copy, dek, MR_STORE_DEK_LEN);
    install_dek(s, copy);
    copy = NULL;
    MR_GUARD_OUT(seal_dek(s));
    s->reason[0] = '\0';
    *outcome = MR_SEAL_LOADED;
    *store = st;
    st = NULL;
    res = MR_SUCCESS;
out:
    mr_store_close(st);
    mr_secret_free(copy, MR_STORE_DEK_LEN);
    return res;
}

MR_RESULT mr_sealer_export_dek(const mr_sealer *s, mr_buf *out)
{
    MR_ENSURE(s->dek != NULL, MR_ERR_STATE, "no state key installed");
    MR_ENSURE(out != NULL && (out->flags & MR_BUF_SECRET), MR_ERR_USAGE,
              "the state key can only be exported into a secret buffer");
    return mr_buf_append(out, s->dek, MR_STORE_DEK_LEN);
}

MR_RESULT mr_sealer_set_mode(mr_sealer *s, mr_seal_mode mode)
{
    MR_ENSURE(mode >= MR_SEAL_MODE_PRODUCT_KEY && mode <= MR_SEAL_MODE_DISABLED, MR_ERR_USAGE,
              "unknown seal mode");
    s->mode = mode;
    if (s->dek == NULL)
        return MR_SUCCESS;
    return seal_dek(s);
}

/* ---- shared stores ---- */

MR_RESULT mr_sealer_unseal_only(mr_sealer *s, bool *have)
{
    uint8_t *dek = NULL;
    bool unavailable = true;
    *have = false;
    s->reason[0] = '\0';
    MR_GUARD(unseal_dek(s, &dek, &unavailable));
    if (unavailable)
        return MR_SUCCESS;
    install_dek(s, dek);
    *have = true;
    return MR_SUCCESS;
}

MR_RESULT mr_sealer_adopt(mr_sealer *s, const uint8_t *dek, size_t len)
{
    MR_ENSURE(dek != NULL && len == MR_STORE_DEK_LEN, MR_ERR_USAGE, "state key must be %u bytes",
              MR_STORE_DEK_LEN);
    uint8_t *copy = mr_secret_alloc(MR_STORE_DEK_LEN);
    MR_ENSURE_ALLOC(copy);
    memcpy(copy, dek, MR_STORE_DEK_LEN);
    install_dek(s, copy);
    s->reason[0] = '\0';
    return seal_dek(s);
}

/* ------------------------------------------------------------------------------------------ */
/* the sealed copy outside the seal directory (kubernetes: ConfigMap marblerun-sealed-kek)     */

MR_RESULT mr_sealer_export_sealed(const mr_sealer *s, mr_buf *out, bool *found)
{
    uint8_t file[DEK_FILE_LEN];
    bool missing = false, wrong = false;
    char path[PATH_MAX];
    *found = false;
    MR_GUARD(path_join(path, sizeof(path), s->dir, SEALED_KEY));
    MR_GUARD(read_exact(path, file, sizeof(file), &missing, &wrong));
    if (missing || wrong)
        return MR_SUCCESS;
    MR_GUARD(mr_buf_set(out, file, sizeof(file)));
    *found = true;
    return MR_SUCCESS;
}

MR_RESULT mr_sealer_import_sealed(mr_sealer *s, mr_slice blob)
{
    MR_ENSURE(blob.len == DEK_FILE_LEN && CRYPTO_memcmp(blob.ptr, DEK_MAGIC, 4) == 0 &&
                  blob.ptr[4] == DEK_VERSION,
              MR_ERR_PROTOCOL, "the sealed copy of the state key has an unknown format");
    return write_atomic(s->dir, SEALED_KEY, SEALED_KEY_TMP, blob.ptr, blob.len);
}

MR_RESULT mr_sealer_host_id(mr_sealer *s, char out[MR_SEAL_HOST_ID_LEN + 1], bool *found)
{
    static const char info[] = "MarbleRun-C sealing host id v1";
    mr_result res = MR_FAILURE;
    uint8_t *kek = NULL;
    uint8_t id[MR_SEAL_HOST_ID_LEN / 2];
    bool unavailable = false;
    mr_buf hex;
    mr_buf_init(&hex, 0, 0);
    *found = false;
    if (s->kind == MR_KEK_NONE || s->mode == MR_SEAL_MODE_DISABLED)
        return MR_SUCCESS;
    kek = mr_secret_alloc(KEK_LEN);
    MR_ENSURE_ALLOC_OUT(kek);
    MR_GUARD_OUT(get_kek(s, provider_for(s), false, kek, &unavailable));
    if (unavailable) {
        res = MR_SUCCESS;
        goto out;
    }
    MR_GUARD_OUT(mr_hkdf_sha256_raw(MR_SLICE(kek, KEK_LEN), MR_SLICE(NULL, 0),
                                    MR_SLICE(info, sizeof(info) - 1), id, sizeof(id)));
    MR_GUARD_OUT(mr_hex_encode_buf(id, sizeof(id), &hex));
    memcpy(out, hex.data, MR_SEAL_HOST_ID_LEN);
    out[MR_SEAL_HOST_ID_LEN] = '\0';
    *found = true;
    res = MR_SUCCESS;
out:
    mr_buf_free(&hex);
    mr_secret_free(kek, KEK_LEN);
    return res;
}
