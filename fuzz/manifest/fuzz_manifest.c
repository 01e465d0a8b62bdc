/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: manifest decoding, then everything that runs on a decoded manifest: the
 * JSON encoding of secrets (which must be valid JSON), the consistency check, the PKI
 * checks, permissions, the template dry run and the conversion of TDX/SNP packages into the
 * verifier's rules (only after the consistency check accepted the manifest, as the
 * Coordinator does).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/log.h"
#include "manifest/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const mr_manifest *m)
{
    for (size_t i = 0; i < m->secrets.count; i++) {
        mr_buf out;
        mr_buf_init(&out, 0, 0);
        if (mr_ok(mr_manifest_encode_secret(&m->secrets.items[i], &out))) {
            json_error_t err;
            json_t *j = json_loadb((const char *)out.data, out.len, 0, &err);
            if (j == NULL)
                abort();
            json_decref(j);
        }
        mr_buf_free(&out);
    }

    if (mr_ok(mr_manifest_check(m, NULL))) {
        for (size_t i = 0; i < m->packages.count; i++) {
            const mr_manifest_package *p = &m->packages.items[i];
            mr_tdx_package t;
            mr_snp_package s;
            /* the check validated the hex: the conversion must succeed */
            if (p->tdx.present && !mr_ok(mr_manifest_tdx_package(p, &t)))
                abort();
            if (p->snp.present && !mr_ok(mr_manifest_snp_package(p, &s)))
                abort();
        }
    }
    MR_IGNORE(mr_manifest_check_user_certs(m));
    MR_IGNORE(mr_manifest_check_recovery_keys(m));
    MR_IGNORE(mr_manifest_dry_run(m, NULL));
    MR_IGNORE(mr_manifest_check_package_update(m, m));
    for (size_t i = 0; i < m->users.count; i++) {
        const char *res[] = {"a", m->users.items[i].name.ptr ? m->users.items[i].name.ptr : ""};
        (void)mr_manifest_user_permitted(m, m->users.items[i].name.ptr ? m->users.items[i].name.ptr
                                                                       : "",
                                         MR_PERM_READ_SECRET, res, 2);
    }
    (void)mr_manifest_required_acks(m);
    (void)mr_manifest_is_package_update(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        mr_log_init(MR_LOG_ERROR, MR_LOG_JSON);
        quiet = 1;
    }
    mr_manifest *m = NULL;
    if (mr_ok(mr_manifest_decode(data, size, &m)))
        exercise(m);
    mr_manifest_free(m);
    mr_error_clear();
    return 0;
}
