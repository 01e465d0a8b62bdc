/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the manifest template engine: parse + render (dry run and real data).
 * Target functions: mr_tmpl_parse, mr_tmpl_render, mr_tmpl_check.
 * Input: byte 0 selects the function set (bit 0: Env) and the output limit (bit 1: small);
 * the rest is the template source.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "manifest/template.h"

static const uint8_t DER[] = {0x30, 0x03, 0x02, 0x01, 0x05};
static const uint8_t KEY[] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
static const uint8_t NUL_VALUE[] = {'a', 0, 'b'};

static const mr_tmpl_named_secret ENTRIES[] = {
    {"cert", {.type = "cert-ecdsa", .size = 256, .cert = {DER, sizeof(DER)},
              .priv = {DER, sizeof(DER)}, .pub = {DER, sizeof(DER)}}},
    {"key", {.type = "symmetric-key", .size = 64, .priv = {KEY, sizeof(KEY)},
             .pub = {KEY, sizeof(KEY)}}},
    {"my-plain", {.type = "plain", .user_defined = true, .priv = {NUL_VALUE, 3},
                  .pub = {NUL_VALUE, 3}}},
    {"user", {.type = "cert-rsa", .user_defined = true, .placeholder = true}},
    {"gen", {.type = "symmetric-key", .size = 128, .placeholder = true}},
};
static mr_tmpl_secret_table TABLE = {ENTRIES, sizeof(ENTRIES) / sizeof(ENTRIES[0])};
static const mr_tmpl_secret ROOT = {.cert = {DER, sizeof(DER)}};

static const mr_tmpl_secret *lookup(void *ctx, const char *name, size_t len)
{
    return mr_tmpl_table_lookup(ctx, name, len);
}

static void check_error(void)
{
    const mr_error *e = mr_error_get();
    if (e->cat != MR_ERR_USAGE && e->cat != MR_ERR_INTERNAL)
        abort();
    if (e->cat == MR_ERR_USAGE && strncmp(e->msg, "template: ", 10) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mr_tmpl_mode mode = (data[0] & 1) ? MR_TMPL_ENV : MR_TMPL_FILES;
    size_t max = (data[0] & 2) ? 64 : 1 << 20;
    data++;
    size--;

    mr_tmpl_data d = {.root_ca = &ROOT, .marble_cert = &ROOT, .secrets = lookup,
                      .secrets_ctx = &TABLE, .previous_secrets = lookup,
                      .previous_ctx = &TABLE};
    mr_tmpl *t = NULL;
    mr_error_clear();
    if (!mr_ok(mr_tmpl_parse(MR_TMPL_NAME, data, size, mode, &t))) {
        check_error();
        return 0;
    }
    for (int dry = 0; dry < 2; dry++) {
        mr_buf out;
        mr_buf_init(&out, max, MR_BUF_SECRET);
        mr_error_clear();
        if (!mr_ok(mr_tmpl_render(t, &d, dry ? MR_TMPL_DRY_RUN : 0, &out))) {
            check_error();
            if (out.len != 0)
                abort();
        } else if (mr_tmpl_is_static(t) && out.len > size) {
            abort(); /* text without actions can only shrink (trimming) */
        }
        mr_buf_free(&out);
    }
    mr_tmpl_free(t);
    /* the one-shot dry run must agree with parse + dry render */
    mr_error_clear();
    if (!mr_ok(mr_tmpl_check(MR_TMPL_NAME, data, size, mode, &d)))
        check_error();
    return 0;
}
