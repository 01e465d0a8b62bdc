/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Template dry run of a whole manifest (spec §6.12.5) on top of the template engine: every
 * non-NoTemplates File and Env of every Marble is parsed and executed with MarbleRun's dummy
 * values. Without caller data, `.Secrets` holds every manifest secret as a placeholder
 * (non-empty exactly where a generated or uploaded value would be).
 */
#include <string.h>

#include "common/alloc.h"
#include "manifest/manifest_int.h"
#include "manifest/template.h"

typedef struct dry_ctx {
    const mr_manifest *m;
    const mr_tmpl_data *data;
    mr_tmpl_secret *placeholders; /* parallel to m->secrets */
} dry_ctx;

static const mr_tmpl_secret *placeholder_lookup(void *ctx, const char *name, size_t len)
{
    const dry_ctx *d = ctx;
    const mr_manifest_secret *s = mr_manifest_map_find(d->m->secrets.items, d->m->secrets.count,
                                                       sizeof(*s), name, len);
    if (s == NULL)
        return NULL;
    return &d->placeholders[s - d->m->secrets.items];
}

static MR_RESULT check_one(void *ctx, mr_manifest_tpl_kind kind, const char *text, size_t len)
{
    const dry_ctx *d = ctx;
    return mr_tmpl_check(MR_TMPL_NAME, (const uint8_t *)text, len,
                         kind == MR_MANIFEST_TPL_FILE ? MR_TMPL_FILES : MR_TMPL_ENV, d->data);
}

MR_RESULT mr_manifest_dry_run(const mr_manifest *m, const struct mr_tmpl_data *data)
{
    mr_result res = MR_FAILURE;
    dry_ctx d = {.m = m, .data = data};
    mr_tmpl_data own = {0};
    MR_ENSURE_REF(m);
    if (data == NULL) {
        if (m->secrets.count) {
            d.placeholders = mr_calloc(m->secrets.count, sizeof(*d.placeholders));
            MR_ENSURE_ALLOC_OUT(d.placeholders);
        }
        for (size_t i = 0; i < m->secrets.count; i++) {
            const mr_manifest_secret *s = &m->secrets.items[i];
            d.placeholders[i] = (mr_tmpl_secret){
                .type = s->type.ptr,
                .size = s->size,
                .shared = s->shared,
                .user_defined = s->user_defined,
                .valid_for = s->valid_for,
                .placeholder = true,
            };
        }
        own.secrets = placeholder_lookup;
        own.secrets_ctx = &d;
        own.previous_secrets = placeholder_lookup;
        own.previous_ctx = &d;
        d.data = &own;
    }
    MR_GUARD_OUT(mr_manifest_template_dry_run(m, check_one, &d));
    res = MR_SUCCESS;
out:
    mr_free(d.placeholders);
    return res;
}
