/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: manifest decoding (strict and lenient), then everything that runs on a
 * decoded manifest: canonical encoding (and re-decoding its output), the consistency check,
 * the PKI checks, permissions and the template dry run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "manifest/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const mr_manifest *m)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(mr_manifest_encode(m, &out))) {
        /* Our own output decodes again (unless a Cert "Raw" field held bytes that are not a
         * certificate, as in Go) and then encodes to the same bytes. */
        mr_manifest *again = NULL;
        if (mr_ok(mr_manifest_decode(out.data, out.len, &again))) {
            mr_buf out2;
            mr_buf_init(&out2, 0, 0);
            if (mr_ok(mr_manifest_encode(again, &out2)) &&
                (out2.len != out.len || memcmp(out.data, out2.data, out.len) != 0))
                abort();
            mr_buf_free(&out2);
        }
        mr_manifest_free(again);
    }
    mr_buf_free(&out);

    MR_IGNORE(mr_manifest_check(m, NULL));
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
    m = NULL;
    if (mr_ok(mr_manifest_decode_lenient(data, size, &m)))
        (void)mr_manifest_is_package_update(m);
    mr_manifest_free(m);
    mr_error_clear();
    return 0;
}
