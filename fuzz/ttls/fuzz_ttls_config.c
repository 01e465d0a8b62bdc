/* SPDX-License-Identifier: Apache-2.0 */
/* Target: MARBLE_TTLS_CONFIG (ttls/config.c: mr_ttls_config_parse) and MARBLE_TTLS_ENDPOINTS.
 * Properties: no crash, leak or overread on any input; an accepted config has entries with a
 * port, Outgoing entries with an address, and credentials; its policy lines never contain its
 * key; its endpoint list parses back to the same keys and directions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "ttls/ttls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const mr_ttls_config *c)
{
    mr_buf lines, eps;
    mr_buf_init(&lines, 0, 0);
    mr_buf_init(&eps, 0, 0);
    for (size_t i = 0; i < c->count; i++) {
        const mr_ttls_entry *e = &c->entries[i];
        if (e->port == 0 || (e->dir == MR_TTLS_OUTGOING && e->host[0] == '\0'))
            abort();
        if (!e->creds || e->cacrt.len == 0 || e->clicrt.len == 0 || e->clikey.len == 0)
            abort();
    }
    if (mr_ok(mr_ttls_policy_lines(c, &lines))) {
        for (size_t i = 0; i < c->count; i++) {
            const mr_ttls_entry *e = &c->entries[i];
            /* a key long enough not to occur by chance in the fixed texts */
            if (e->clikey.len >= 24 && memmem(lines.data, lines.len, e->clikey.data, e->clikey.len) != NULL)
                abort();
        }
    }
    if (mr_ok(mr_ttls_config_endpoints(c, &eps))) {
        mr_ttls_config d;
        if (!mr_ok(mr_ttls_config_parse_endpoints((const char *)eps.data, &d)) || d.count != c->count)
            abort();
        for (size_t i = 0; i < c->count; i++)
            if (d.entries[i].dir != c->entries[i].dir || strcmp(d.entries[i].key, c->entries[i].key) != 0 ||
                d.entries[i].port != c->entries[i].port)
                abort();
        mr_ttls_config_free(&d);
    }
    mr_buf_free(&lines);
    mr_buf_free(&eps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_ttls_config c;
    if (mr_ok(mr_ttls_config_parse((const char *)data, size, &c))) {
        check(&c);
        mr_ttls_config_free(&c);
    }
    /* the same bytes as an endpoint list (a C string) */
    char *text = mr_alloc(size + 1);
    if (text != NULL) {
        memcpy(text, data, size);
        text[size] = '\0';
        mr_ttls_config d;
        if (mr_ok(mr_ttls_config_parse_endpoints(text, &d)))
            mr_ttls_config_free(&d);
        mr_free(text);
    }
    mr_error_clear();
    return 0;
}
