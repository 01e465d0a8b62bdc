/* SPDX-License-Identifier: Apache-2.0 */
/* Quote issuers (see issuer.h). */
#include "attest/issuer.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/issuer_io.h"
#include "attest/softsgx.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"

enum {
    PATH_MAX_LEN = 4096,
    QUOTE_MAX = 64 * 1024,   /* Gramine caps at 8 KiB, configfs-tsm at 32 KiB */
    SMALL_FILE_MAX = 256,
    SNP_REPORT_SIZE = 1184,
    TSM_ATTR_WAIT_MS = 2000,
    TSM_ATTR_POLL_MS = 5,
};

#define GRAMINE_DIR "/dev/attestation"
#define OCCLUM_DEV "/dev/sgx"

struct mr_issuer {
    mr_issuer_kind kind;
    char root[PATH_MAX_LEN];
    char tsm_dir[PATH_MAX_LEN]; /* EDG_ATTESTATION_TSM_DIR, without root */
    const char *mode_var;
    mr_issuer_tsm_hook tsm_hook;
    void *tsm_hook_arg;
    mr_softsgx *softsgx;
    mr_softsgx_identity softsgx_id;
};

const char *mr_issuer_kind_name(mr_issuer_kind k)
{
    switch (k) {
    case MR_ISSUER_SIMULATION:
        return "simulation";
    case MR_ISSUER_GRAMINE:
        return "gramine";
    case MR_ISSUER_OCCLUM:
        return "occlum";
    case MR_ISSUER_TSM:
        return "tsm";
    case MR_ISSUER_SOFTSGX:
        return "softsgx";
    }
    return "?";
}

mr_issuer_kind mr_issuer_get_kind(const mr_issuer *is) { return is->kind; }

static MR_RESULT dev_path(const mr_issuer *is, const char *path, char out[PATH_MAX_LEN])
{
    int n = snprintf(out, PATH_MAX_LEN, "%s%s", is->root, path);
    MR_ENSURE(n > 0 && n < PATH_MAX_LEN, MR_ERR_USAGE, "device path too long: %s%s", is->root,
              path);
    return MR_SUCCESS;
}

static bool exists(const mr_issuer *is, const char *path, bool want_dir, bool refuse_dir)
{
    char p[PATH_MAX_LEN];
    struct stat st;
    if (!mr_ok(dev_path(is, path, p)) || stat(p, &st) != 0)
        return false;
    if (want_dir)
        return S_ISDIR(st.st_mode);
    return !(refuse_dir && S_ISDIR(st.st_mode));
}

/* ---- selection ---------------------------------------------------------------------------- */

static MR_RESULT detect(mr_issuer *is)
{
    if (mr_config_bool("OE_SIMULATION")) {
        is->kind = MR_ISSUER_SIMULATION;
        return MR_SUCCESS;
    }
    if (exists(is, GRAMINE_DIR "/quote", false, true)) {
        is->kind = MR_ISSUER_GRAMINE;
    } else if (exists(is, OCCLUM_DEV, false, true)) {
        /* on an SGX host (not inside Occlum) /dev/sgx is a directory of driver nodes */
        is->kind = MR_ISSUER_OCCLUM;
    } else if (exists(is, is->tsm_dir, true, false)) {
        is->kind = MR_ISSUER_TSM;
    } else {
        MR_BAIL(MR_ERR_USAGE,
                "no attestation device found (looked for " GRAMINE_DIR "/quote, " OCCLUM_DEV
                ", %s); refusing to run without attestation: set "
                "EDG_ATTESTATION=simulation or OE_SIMULATION=1 for an insecure simulation, or "
                "EDG_ATTESTATION=softsgx for tests",
                is->tsm_dir);
    }
    return MR_SUCCESS;
}

static MR_RESULT parse_mode(const char *mode, mr_issuer *is, bool *is_auto)
{
    static const struct {
        const char *name;
        mr_issuer_kind kind;
    } modes[] = {
        {"gramine", MR_ISSUER_GRAMINE}, {"occlum", MR_ISSUER_OCCLUM},
        {"tsm", MR_ISSUER_TSM},         {"simulation", MR_ISSUER_SIMULATION},
        {"softsgx", MR_ISSUER_SOFTSGX},
    };
    *is_auto = mode == NULL || strcasecmp(mode, "auto") == 0;
    if (*is_auto)
        return MR_SUCCESS;
    for (size_t i = 0; i < MR_ARRAY_LEN(modes); i++) {
        if (strcasecmp(mode, modes[i].name) == 0) {
            is->kind = modes[i].kind;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE,
            "%s: unknown quote source \"%s\" (want auto, gramine, occlum, tsm, "
            "simulation or softsgx)",
            is->mode_var != NULL ? is->mode_var : "EDG_ATTESTATION", mode);
}

static MR_RESULT open_softsgx(mr_issuer *is)
{
    const char *dir = mr_config_get("EDG_SOFTSGX_DIR");
    MR_ENSURE(dir != NULL, MR_ERR_USAGE,
              "EDG_ATTESTATION=softsgx needs EDG_SOFTSGX_DIR (a directory made by "
              "marblerun-softsgx init)");
    MR_GUARD(mr_softsgx_identity_from_env(&is->softsgx_id));
    MR_GUARD(mr_softsgx_load(dir, &is->softsgx));
    MR_LOG_WARN("attestation: using softsgx TEST quotes; they prove nothing and are accepted "
                "only by verifiers configured with the softsgx test root",
                MR_F_STR("dir", dir));
    return MR_SUCCESS;
}

MR_RESULT mr_issuer_open(const mr_issuer_opts *opts, mr_issuer **out)
{
    mr_result res = MR_FAILURE;
    bool is_auto = false;
    mr_issuer *is = mr_calloc(1, sizeof(*is));
    MR_ENSURE_ALLOC_OUT(is);
    const char *root = opts != NULL && opts->root != NULL ? opts->root : "";
    int n = snprintf(is->root, sizeof(is->root), "%s", root);
    MR_ENSURE_OUT(n >= 0 && (size_t)n < sizeof(is->root), MR_ERR_USAGE, "device root too long");
    if (opts != NULL) {
        is->tsm_hook = opts->tsm_hook;
        is->tsm_hook_arg = opts->tsm_hook_arg;
        is->mode_var = opts->mode_var;
    }
    n = snprintf(is->tsm_dir, sizeof(is->tsm_dir), "%s", mr_config_get("EDG_ATTESTATION_TSM_DIR"));
    MR_ENSURE_OUT(n > 0 && (size_t)n < sizeof(is->tsm_dir), MR_ERR_USAGE,
                  "EDG_ATTESTATION_TSM_DIR is empty or too long");
    const char *mode = opts != NULL && opts->mode != NULL ? opts->mode
                                                          : mr_config_get("EDG_ATTESTATION");
    MR_GUARD_OUT(parse_mode(mode, is, &is_auto));
    if (is_auto)
        MR_GUARD_OUT(detect(is));
    if (is->kind == MR_ISSUER_SOFTSGX)
        MR_GUARD_OUT(open_softsgx(is));
    if (is->kind == MR_ISSUER_SIMULATION)
        MR_LOG_WARN("attestation: SIMULATION mode: no quotes are produced and nothing is "
                    "attested; never use this in production");
    else
        MR_LOG_INFO("attestation: quote source selected",
                    MR_F_STR("source", mr_issuer_kind_name(is->kind)),
                    MR_F_BOOL("auto", is_auto));
    *out = is;
    is = NULL;
    res = MR_SUCCESS;
out:
    mr_issuer_free(is);
    return res;
}

void mr_issuer_free(mr_issuer *is)
{
    if (is == NULL)
        return;
    mr_softsgx_free(is->softsgx);
    mr_free(is);
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* Checks that the evidence carries our report data: a device that hands back a stale or
 * foreign quote is caught here instead of at the relying party. */
static MR_RESULT check_report_data(mr_cursor *c, size_t offset, const uint8_t rd[64],
                                   const char *source)
{
    mr_slice got;
    MR_ENSURE(offset >= c->pos, MR_ERR_INTERNAL, "report data offset");
    MR_GUARD(mr_cursor_skip(c, offset - c->pos));
    MR_GUARD(mr_cursor_view(c, 64, &got));
    MR_ENSURE(memcmp(got.ptr, rd, 64) == 0, MR_ERR_ATTESTATION,
              "%s returned evidence that does not carry the requested report data", source);
    return MR_SUCCESS;
}

/* Checks that bytes look like a DCAP quote of the expected TEE for our report data (not a
 * full parse: the verifier on the other side does that). */
static MR_RESULT check_dcap(const uint8_t *q, size_t len, bool tdx, const uint8_t rd[64],
                            const char *source)
{
    mr_cursor c;
    uint16_t version = 0, key_type = 0;
    uint32_t tee = 0;
    mr_cursor_init(&c, q, len);
    MR_ENSURE(len >= 48 + 384 + 4, MR_ERR_ATTESTATION, "%s returned %zu bytes, not a quote",
              source, len);
    MR_GUARD(mr_cursor_u16le(&c, &version));
    MR_GUARD(mr_cursor_u16le(&c, &key_type));
    MR_GUARD(mr_cursor_u32le(&c, &tee));
    MR_ENSURE(version >= 3 && version <= 5 && key_type == 2, MR_ERR_ATTESTATION,
              "%s returned an unsupported quote (version %u, key type %u)", source, version,
              key_type);
    MR_ENSURE(tdx ? (version >= 4 && tee == 0x81) : (version == 3 || tee == 0), MR_ERR_ATTESTATION,
              "%s returned a quote for the wrong TEE (version %u, TEE type 0x%x)", source,
              version, tee);
    /* REPORTDATA: SGX body offset 320, TD report offset 520; v5 bodies start at 54 */
    size_t body = version == 5 ? 54 : 48;
    return check_report_data(&c, body + (tdx ? 520 : 320), rd, source);
}

static MR_RESULT read_u64_file(const char *path, uint64_t *out)
{
    mr_result res = MR_FAILURE;
    mr_buf b;
    mr_buf_init(&b, SMALL_FILE_MAX + 1, 0);
    MR_GUARD_OUT(mr_issuer_io_read(path, SMALL_FILE_MAX, &b));
    MR_GUARD_OUT(mr_buf_nul_terminate(&b));
    const char *s = (const char *)b.data;
    char *end = NULL;
    MR_ENSURE_OUT(s[0] >= '0' && s[0] <= '9', MR_ERR_IO, "%s: not a number", path);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    MR_ENSURE_OUT(errno == 0 && end != NULL && (*end == '\0' || strcmp(end, "\n") == 0),
                  MR_ERR_IO, "%s: not a number", path);
    *out = (uint64_t)v;
    res = MR_SUCCESS;
out:
    mr_buf_free(&b);
    return res;
}

/* Reads a small text attribute into out (NUL-terminated, trailing newline removed). */
static MR_RESULT read_word(const char *path, char *out, size_t out_len)
{
    mr_result res = MR_FAILURE;
    mr_buf b;
    mr_buf_init(&b, SMALL_FILE_MAX + 1, 0);
    MR_GUARD_OUT(mr_issuer_io_read(path, SMALL_FILE_MAX, &b));
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\0'))
        b.len--;
    MR_ENSURE_OUT(b.len < out_len, MR_ERR_IO, "%s: value too long", path);
    if (b.len > 0)
        memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    res = MR_SUCCESS;
out:
    mr_buf_free(&b);
    return res;
}

/* ---- gramine ------------------------------------------------------------------------------ */

static MR_RESULT issue_gramine(mr_issuer *is, const uint8_t rd[64], mr_buf *out)
{
    mr_result res = MR_FAILURE;
    char path[PATH_MAX_LEN];
    char type[32];
    mr_buf q;
    mr_buf_init(&q, QUOTE_MAX, 0);
    MR_GUARD_OUT(dev_path(is, GRAMINE_DIR "/attestation_type", path));
    if (access(path, F_OK) == 0) {
        MR_GUARD_OUT(read_word(path, type, sizeof(type)));
        MR_ENSURE_OUT(strcmp(type, "dcap") == 0, MR_ERR_USAGE,
                      "Gramine attestation type is \"%s\", not \"dcap\": set "
                      "sgx.remote_attestation = \"dcap\" in the manifest",
                      type);
    }
    MR_GUARD_OUT(dev_path(is, GRAMINE_DIR "/user_report_data", path));
    MR_GUARD_OUT(mr_issuer_io_write_existing(path, rd, 64));
    MR_GUARD_OUT(dev_path(is, GRAMINE_DIR "/quote", path));
    MR_GUARD_OUT(mr_issuer_io_read(path, QUOTE_MAX, &q));
    MR_GUARD_OUT(check_dcap(q.data, q.len, false, rd, path));
    MR_GUARD_OUT(mr_issuer_oe_wrap(q.data, q.len, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&q);
    return res;
}

/* ---- occlum ------------------------------------------------------------------------------- */

typedef struct occlum_gen_quote_arg {
    const uint8_t *report_data; /* sgx_report_data_t, 64 bytes */
    uint32_t *quote_len;
    uint8_t *quote_buf;
} occlum_gen_quote_arg;

#define SGXIOC_GET_DCAP_QUOTE_SIZE _IOR('s', 7, uint32_t)
#define SGXIOC_GEN_DCAP_QUOTE _IOWR('s', 8, occlum_gen_quote_arg)
_Static_assert(SGXIOC_GET_DCAP_QUOTE_SIZE == 0x80047307u, "Occlum ioctl number");
_Static_assert(SGXIOC_GEN_DCAP_QUOTE == 0xC0187308u, "Occlum ioctl number");

static MR_RESULT issue_occlum(mr_issuer *is, const uint8_t rd[64], mr_buf *out)
{
    mr_result res = MR_FAILURE;
    char path[PATH_MAX_LEN];
    uint32_t size = 0, len = 0;
    uint8_t *buf = NULL;
    int fd = -1;
    MR_GUARD_OUT(dev_path(is, OCCLUM_DEV, path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    MR_ENSURE_OUT(ioctl(fd, SGXIOC_GET_DCAP_QUOTE_SIZE, &size) == 0, MR_ERR_IO,
                  "%s: SGXIOC_GET_DCAP_QUOTE_SIZE failed: %s", path, strerror(errno));
    MR_ENSURE_OUT(size > 0 && size <= QUOTE_MAX, MR_ERR_IO,
                  "%s: SGXIOC_GET_DCAP_QUOTE_SIZE returned %u", path, size);
    buf = mr_calloc(1, size);
    MR_ENSURE_ALLOC_OUT(buf);
    len = size;
    occlum_gen_quote_arg arg = {.report_data = rd, .quote_len = &len, .quote_buf = buf};
    if (ioctl(fd, SGXIOC_GEN_DCAP_QUOTE, &arg) != 0) {
        int e = errno;
        MR_BAIL_OUT(MR_ERR_IO, "%s: SGXIOC_GEN_DCAP_QUOTE failed: %s", path,
                    e == EIO      ? "DCAP not ready (no DCAP library or PCCS on the host)"
                    : e == EINVAL ? "quote buffer too small"
                                  : strerror(e));
    }
    MR_ENSURE_OUT(len > 0 && len <= size, MR_ERR_ATTESTATION, "%s: bad quote length %u", path,
                  len);
    MR_GUARD_OUT(check_dcap(buf, len, false, rd, path));
    MR_GUARD_OUT(mr_issuer_oe_wrap(buf, len, out));
    res = MR_SUCCESS;
out:
    if (fd >= 0)
        close(fd);
    mr_free(buf);
    return res;
}

/* ---- configfs-tsm -------------------------------------------------------------------------- */

static atomic_uint tsm_counter;

static MR_RESULT tsm_entry_name(char *out, size_t out_len)
{
    uint8_t r[4];
    MR_GUARD_OSSL(RAND_bytes(r, sizeof(r)), MR_ERR_INTERNAL, "RAND_bytes failed");
    unsigned seq = atomic_fetch_add(&tsm_counter, 1u);
    int n = snprintf(out, out_len, "marblerun-%ld-%u-%02x%02x%02x%02x", (long)getpid(), seq, r[0],
                     r[1], r[2], r[3]);
    MR_ENSURE(n > 0 && (size_t)n < out_len, MR_ERR_INTERNAL, "entry name too long");
    return MR_SUCCESS;
}

/* configfs creates a report entry's attributes with its mkdir; an emulation (a test, a
 * container runtime) may add them a moment later. Waits up to TSM_ATTR_WAIT_MS for path. */
static MR_RESULT tsm_wait_attrs(const char *entry, const char *path)
{
    for (int waited = 0; access(path, F_OK) != 0; waited += TSM_ATTR_POLL_MS) {
        MR_ENSURE(waited < TSM_ATTR_WAIT_MS, MR_ERR_IO,
                  "configfs-tsm: the report entry %s has no attributes (is "
                  "EDG_ATTESTATION_TSM_DIR a configfs-tsm report directory?)",
                  entry);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = TSM_ATTR_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return MR_SUCCESS;
}

/* Appends the SNP certificate table when the entry has a non-empty auxblob. */
static MR_RESULT tsm_aux(const char *entry, mr_buf *aux)
{
    char path[PATH_MAX_LEN];
    MR_GUARD(mr_issuer_io_path(path, sizeof(path), entry, "auxblob"));
    if (aux == NULL || access(path, F_OK) != 0)
        return MR_SUCCESS;
    return mr_issuer_io_read(path, QUOTE_MAX, aux);
}

static MR_RESULT tsm_collect(mr_issuer *is, const char *entry, const uint8_t rd[64], mr_buf *out,
                             mr_buf *aux, mr_tee_type *tee)
{
    mr_result res = MR_FAILURE;
    char path[PATH_MAX_LEN];
    char provider[64];
    uint64_t gen_before = 0, gen_after = 0;
    mr_buf blob;
    mr_buf_init(&blob, QUOTE_MAX, 0);
    if (is->tsm_hook != NULL)
        is->tsm_hook(entry, 0, is->tsm_hook_arg);
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), entry, "generation"));
    MR_GUARD_OUT(tsm_wait_attrs(entry, path));
    MR_GUARD_OUT(read_u64_file(path, &gen_before));
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), entry, "inblob"));
    MR_GUARD_OUT(mr_issuer_io_write_existing(path, rd, 64));
    if (is->tsm_hook != NULL)
        is->tsm_hook(entry, 1, is->tsm_hook_arg);
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), entry, "outblob"));
    MR_GUARD_OUT(mr_issuer_io_read(path, QUOTE_MAX, &blob));
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), entry, "generation"));
    MR_GUARD_OUT(read_u64_file(path, &gen_after));
    /* exactly our one write (inblob) may have happened in between */
    MR_ENSURE_OUT(gen_after == gen_before + 1, MR_ERR_ATTESTATION,
                  "configfs-tsm: report generation went from %llu to %llu: another process "
                  "wrote to the report entry concurrently; retry",
                  (unsigned long long)gen_before, (unsigned long long)gen_after);
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), entry, "provider"));
    MR_GUARD_OUT(read_word(path, provider, sizeof(provider)));
    if (strcmp(provider, "tdx_guest") == 0) {
        MR_GUARD_OUT(check_dcap(blob.data, blob.len, true, rd, "configfs-tsm (tdx_guest)"));
        *tee = MR_TEE_TDX;
    } else if (strcmp(provider, "sev_guest") == 0) {
        mr_cursor c;
        uint32_t version = 0;
        mr_cursor_init(&c, blob.data, blob.len);
        MR_ENSURE_OUT(blob.len >= SNP_REPORT_SIZE, MR_ERR_ATTESTATION,
                      "configfs-tsm (sev_guest) returned %zu bytes, not an SNP report",
                      blob.len);
        MR_GUARD_OUT(mr_cursor_u32le(&c, &version));
        MR_ENSURE_OUT(version >= 2, MR_ERR_ATTESTATION,
                      "configfs-tsm (sev_guest) returned an SNP report of version %u", version);
        MR_GUARD_OUT(check_report_data(&c, 0x50, rd, "configfs-tsm (sev_guest)"));
        MR_GUARD_OUT(tsm_aux(entry, aux));
        *tee = MR_TEE_SNP;
    } else {
        MR_BAIL_OUT(MR_ERR_ATTESTATION, "configfs-tsm: unsupported provider \"%s\"", provider);
    }
    MR_GUARD_OUT(mr_buf_append(out, blob.data, blob.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&blob);
    return res;
}

static MR_RESULT issue_tsm(mr_issuer *is, const uint8_t rd[64], mr_buf *out, mr_buf *aux,
                           mr_tee_type *tee)
{
    char base[PATH_MAX_LEN], name[64], entry[PATH_MAX_LEN];
    MR_GUARD(dev_path(is, is->tsm_dir, base));
    MR_GUARD(tsm_entry_name(name, sizeof(name)));
    MR_GUARD(mr_issuer_io_path(entry, sizeof(entry), base, name));
    MR_ENSURE(mkdir(entry, 0700) == 0, MR_ERR_IO, "cannot create the configfs-tsm entry %s: %s",
              entry, strerror(errno));
    mr_result r = tsm_collect(is, entry, rd, out, aux, tee);
    /* configfs removes the attribute files with the entry; on a plain directory (tests)
     * rmdir fails, which is harmless */
    if (rmdir(entry) != 0 && errno != ENOTEMPTY && errno != EEXIST)
        MR_LOG_WARN("configfs-tsm: cannot remove the report entry", MR_F_STR("entry", entry));
    return r;
}

/* ---- issue -------------------------------------------------------------------------------- */

MR_RESULT mr_issuer_issue(mr_issuer *is, const uint8_t *report_data, size_t report_data_len,
                          mr_buf *out, mr_tee_type *tee)
{
    return mr_issuer_issue_ex(is, report_data, report_data_len, out, NULL, tee);
}

MR_RESULT mr_issuer_evidence(mr_issuer *is, const uint8_t *report_data, size_t report_data_len,
                             mr_buf *out, mr_tee_type *tee)
{
    mr_result res = MR_FAILURE;
    mr_buf aux;
    mr_buf_init(&aux, QUOTE_MAX, 0);
    size_t start = out->len;
    MR_GUARD_OUT(mr_issuer_issue_ex(is, report_data, report_data_len, out, &aux, tee));
    if (*tee == MR_TEE_SNP && !mr_ok(mr_buf_append(out, aux.data, aux.len))) {
        out->len = start;
        *tee = MR_TEE_NONE;
        goto out;
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&aux);
    return res;
}

MR_RESULT mr_issuer_issue_ex(mr_issuer *is, const uint8_t *report_data, size_t report_data_len,
                             mr_buf *out, mr_buf *aux, mr_tee_type *tee)
{
    uint8_t rd[64] = {0};
    mr_result r = MR_SUCCESS; /* simulation: no evidence, nothing to do */
    MR_ENSURE_REF(is);
    MR_ENSURE(report_data_len <= sizeof(rd), MR_ERR_USAGE,
              "report data is %zu bytes, at most 64 fit", report_data_len);
    if (report_data_len > 0) {
        MR_ENSURE_REF(report_data);
        memcpy(rd, report_data, report_data_len);
    }
    size_t start = out->len;
    size_t aux_start = aux != NULL ? aux->len : 0;
    *tee = MR_TEE_NONE;
    switch (is->kind) {
    case MR_ISSUER_SIMULATION:
        break;
    case MR_ISSUER_GRAMINE:
        r = issue_gramine(is, rd, out);
        *tee = MR_TEE_SGX;
        break;
    case MR_ISSUER_OCCLUM:
        r = issue_occlum(is, rd, out);
        *tee = MR_TEE_SGX;
        break;
    case MR_ISSUER_TSM:
        r = issue_tsm(is, rd, out, aux, tee);
        break;
    case MR_ISSUER_SOFTSGX:
        r = mr_softsgx_quote(is->softsgx, &is->softsgx_id, rd, sizeof(rd), true, out);
        *tee = MR_TEE_SGX;
        break;
    }
    if (!mr_ok(r)) {
        out->len = start;
        if (aux != NULL)
            aux->len = aux_start;
        *tee = MR_TEE_NONE;
    }
    return r;
}
