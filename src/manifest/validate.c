/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consistency check (spec §6.10 and §12.2), the template dry-run walk (§6.12.5),
 * permissions (§8.1), package and full update rules (§8.3, §12.7) and structural equality.
 * Go iterates maps in random order; we walk them sorted, so with several defects the one
 * reported is deterministic.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "manifest/manifest_int.h"

#define ACTION_MAX 64

static const char *S(const mr_mstr *s) { return s->ptr ? s->ptr : ""; }

/* lower(action) == want */
static bool action_is(const mr_mstr *action, const char *want)
{
    char low[ACTION_MAX];
    if (!mr_manifest_lower(S(action), action->len, low, sizeof(low)))
        return false;
    return strcmp(low, want) == 0;
}

static MR_RESULT missing_value(bool debug, const char *field, const mr_mstr *pkg)
{
    if (debug) {
        MR_LOG_WARN("Manifest misses value for a package identity field. This is not accepted in "
                    "non-debug mode, please check your configuration.",
                    MR_F_STR("field", field), MR_F_STR("packageName", S(pkg)));
        return MR_SUCCESS;
    }
    MR_BAIL(MR_ERR_USAGE, "manifest misses value for %s in package %s", field, S(pkg));
}

static MR_RESULT check_marbles(const mr_manifest *m)
{
    for (size_t i = 0; i < m->marbles.count; i++) {
        const mr_manifest_marble *mb = &m->marbles.items[i];
        const mr_manifest_package *p = mr_manifest_map_find(
            m->packages.items, m->packages.count, sizeof(*p), S(&mb->package), mb->package.len);
        MR_ENSURE(p != NULL, MR_ERR_USAGE, "manifest does not contain marble package %s",
                  S(&mb->package));
        if (p->tdx.present || p->snp.present) {
            MR_GUARD(mr_manifest_check_tee_identity_(p));
        } else if (p->unique_id.len != 0 &&
            (p->signer_id.len != 0 || p->has_product_id || p->has_security_version)) {
            if (p->debug)
                MR_LOG_WARN("Manifest specifies UniqueID *and* SignerID/ProductID/SecurityVersion. "
                            "This is not accepted in non-debug mode, please check your "
                            "configuration.",
                            MR_F_STR("packageName", S(&mb->package)));
            else
                MR_BAIL(MR_ERR_USAGE,
                        "manifest specifies both UniqueID *and* SignerID/ProductID/SecurityVersion "
                        "in package %s",
                        S(&mb->package));
        } else if (p->unique_id.len == 0) {
            if (p->signer_id.len == 0)
                MR_GUARD(missing_value(p->debug, "SignerID", &mb->package));
            if (!p->has_product_id)
                MR_GUARD(missing_value(p->debug, "ProductID", &mb->package));
            if (!p->has_security_version)
                MR_GUARD(missing_value(p->debug, "SecurityVersion", &mb->package));
        }
        for (size_t t = 0; t < mb->tls.count; t++) {
            const mr_mstr *tag = &mb->tls.items[t];
            MR_ENSURE(mr_manifest_map_find(m->tls.items, m->tls.count, sizeof(mr_manifest_tls_tag),
                                           S(tag), tag->len) != NULL,
                      MR_ERR_USAGE, "manifest misses TLS entry for %s", S(tag));
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT check_tls(const mr_manifest *m)
{
    for (size_t i = 0; i < m->tls.count; i++) {
        const mr_manifest_tls_tag *t = &m->tls.items[i];
        const char *k = S(&t->name);
        for (size_t j = 0; j < t->incoming.count; j++) {
            const mr_manifest_tls_entry *e = &t->incoming.items[j];
            MR_ENSURE(e->port.len != 0, MR_ERR_USAGE, "manifest misses Port in TLS.Incoming.%s", k);
            if (e->cert.len != 0) {
                MR_ENSURE(mr_manifest_map_find(m->secrets.items, m->secrets.count,
                                               sizeof(mr_manifest_secret), S(&e->cert),
                                               e->cert.len) != NULL,
                          MR_ERR_USAGE, "TLS.Incoming.%s references undefined secret %s", k,
                          S(&e->cert));
                MR_ENSURE(e->disable_client_auth, MR_ERR_USAGE,
                          "TLS.Incoming.%s defines Cert but does not disable client authentication",
                          k);
            } else {
                MR_ENSURE(!e->disable_client_auth, MR_ERR_USAGE,
                          "TLS.Incoming.%s disables client authentication", k);
            }
            MR_GUARD(mr_manifest_check_tls_ext_(m, k, true, e));
        }
        for (size_t j = 0; j < t->outgoing.count; j++) {
            const mr_manifest_tls_entry *e = &t->outgoing.items[j];
            MR_ENSURE(e->addr.len != 0, MR_ERR_USAGE, "manifest misses Addr in TLS.Outgoing.%s", k);
            MR_ENSURE(e->port.len != 0, MR_ERR_USAGE, "manifest misses Port in TLS.Outgoing.%s", k);
            MR_GUARD(mr_manifest_check_tls_ext_(m, k, false, e));
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT check_users(const mr_manifest *m)
{
    for (size_t i = 0; i < m->users.count; i++) {
        const mr_manifest_user *u = &m->users.items[i];
        MR_ENSURE(u->certificate.len != 0, MR_ERR_USAGE,
                  "manifest does not contain a certificate for user %s", S(&u->name));
        for (size_t r = 0; r < u->roles.count; r++) {
            const mr_mstr *role = &u->roles.items[r];
            MR_ENSURE(mr_manifest_map_find(m->roles.items, m->roles.count, sizeof(mr_manifest_role),
                                           S(role), role->len) != NULL,
                      MR_ERR_USAGE, "manifest specifies role %s for user %s, but role does not exist",
                      S(role), S(&u->name));
        }
        /* Go remembers the first user seen with each certificate string */
        for (size_t j = 0; j < i; j++) {
            MR_ENSURE(!mr_manifest_mstr_eq(&m->users.items[j].certificate, &u->certificate),
                      MR_ERR_USAGE, "manifest contains the same certificate for users %s and %s",
                      S(&u->name), S(&m->users.items[j].name));
        }
    }
    return MR_SUCCESS;
}

static void join_list(const mr_mstr_list *l, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->count && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? " " : "", S(&l->items[i]));
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static MR_RESULT check_roles(const mr_manifest *m)
{
    for (size_t i = 0; i < m->roles.count; i++) {
        const mr_manifest_role *r = &m->roles.items[i];
        const char *rn = S(&r->name);
        if (mr_manifest_mstr_eq_c(&r->resource_type, "Packages")) {
            for (size_t j = 0; j < r->resource_names.count; j++) {
                const mr_mstr *res = &r->resource_names.items[j];
                MR_ENSURE(mr_manifest_map_find(m->packages.items, m->packages.count,
                                               sizeof(mr_manifest_package), S(res), res->len) != NULL,
                          MR_ERR_USAGE, "role %s: resource %s of type Packages is not defined in manifest",
                          rn, S(res));
            }
            for (size_t j = 0; j < r->actions.count; j++)
                MR_ENSURE(action_is(&r->actions.items[j], MR_PERM_UPDATE_PACKAGE), MR_ERR_USAGE,
                          "unknown action: %s for type Packages in role: %s",
                          S(&r->actions.items[j]), rn);
        } else if (mr_manifest_mstr_eq_c(&r->resource_type, "Secrets")) {
            bool write = false, read = false;
            for (size_t j = 0; j < r->actions.count; j++) {
                const mr_mstr *a = &r->actions.items[j];
                bool w = action_is(a, MR_PERM_WRITE_SECRET), rd = action_is(a, MR_PERM_READ_SECRET);
                MR_ENSURE(w || rd, MR_ERR_USAGE, "unknown action: %s for type Secrets in role: %s",
                          S(a), rn);
                write = write || w;
                read = read || rd;
            }
            for (size_t j = 0; j < r->resource_names.count; j++) {
                const mr_mstr *res = &r->resource_names.items[j];
                const mr_manifest_secret *s = mr_manifest_map_find(
                    m->secrets.items, m->secrets.count, sizeof(*s), S(res), res->len);
                MR_ENSURE(s != NULL, MR_ERR_USAGE,
                          "role %s: resource %s of type Secrets is not defined in manifest", rn,
                          S(res));
                MR_ENSURE(s->user_defined || !write, MR_ERR_USAGE,
                          "manifest specifies write permission for role %s and secret %s, but "
                          "secret is not user-defined",
                          rn, S(res));
                MR_ENSURE(s->shared || s->user_defined || !read, MR_ERR_USAGE,
                          "manifest specifies read permission for role %s and per-marble-unique "
                          "secret %s",
                          rn, S(res));
            }
        } else if (mr_manifest_mstr_eq_c(&r->resource_type, "Manifest")) {
            MR_ENSURE(r->resource_names.count == 0, MR_ERR_USAGE,
                      "role %s: resource names are not allowed for type Manifest", rn);
            for (size_t j = 0; j < r->actions.count; j++)
                MR_ENSURE(action_is(&r->actions.items[j], MR_PERM_UPDATE_MANIFEST), MR_ERR_USAGE,
                          "unknown action: %s for type Manifest in role: %s",
                          S(&r->actions.items[j]), rn);
        } else {
            /* Go prints the Role struct with %s: {Type [names] [actions]} */
            char names[160], actions[160];
            join_list(&r->resource_names, names, sizeof(names));
            join_list(&r->actions, actions, sizeof(actions));
            MR_BAIL(MR_ERR_USAGE, "unrecognized resource type: {%s [%s] [%s]} for role: %s",
                    S(&r->resource_type), names, actions, rn);
        }
    }
    return MR_SUCCESS;
}

static bool is_cert_type(const mr_mstr *t)
{
    return mr_manifest_mstr_eq_c(t, "cert-rsa") || mr_manifest_mstr_eq_c(t, "cert-ed25519") ||
           mr_manifest_mstr_eq_c(t, "cert-ecdsa");
}

static MR_RESULT check_secrets(const mr_manifest *m)
{
    for (size_t i = 0; i < m->secrets.count; i++) {
        const mr_manifest_secret *s = &m->secrets.items[i];
        if (mr_manifest_mstr_eq_c(&s->type, "plain") ||
            mr_manifest_mstr_eq_c(&s->type, "symmetric-key"))
            continue;
        if (is_cert_type(&s->type)) {
            /* a certificate given as DER always has a NotAfter */
            bool not_after = s->cert.not_after.set || s->cert.raw.present;
            MR_ENSURE(!not_after || s->valid_for == 0,
                      MR_ERR_USAGE,
                      "ambiguous certificate validity duration for secret: %s, both NotAfter and "
                      "ValidFor are specified",
                      S(&s->name));
            continue;
        }
        MR_BAIL(MR_ERR_USAGE, "unknown type: %s for secret: %s", S(&s->type), S(&s->name));
    }
    return MR_SUCCESS;
}

/* Users counted for Config.UpdateThreshold: a role of type Manifest whose first action is
 * UpdateManifest (each user once). */
static uint64_t manifest_updaters(const mr_manifest *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m->users.count; i++) {
        const mr_manifest_user *u = &m->users.items[i];
        for (size_t r = 0; r < u->roles.count; r++) {
            const mr_manifest_role *role = mr_manifest_map_find(
                m->roles.items, m->roles.count, sizeof(*role), S(&u->roles.items[r]),
                u->roles.items[r].len);
            if (role && mr_manifest_mstr_eq_c(&role->resource_type, "Manifest") &&
                role->actions.count > 0 &&
                action_is(&role->actions.items[0], MR_PERM_UPDATE_MANIFEST)) {
                n++;
                break;
            }
        }
    }
    return n;
}

static MR_RESULT check_config(const mr_manifest *m, const mr_manifest_check_opts *opts)
{
    const mr_manifest_config *c = &m->config;
    uint64_t updaters = manifest_updaters(m);
    MR_ENSURE(updaters >= c->update_threshold, MR_ERR_USAGE,
              "not enough users with manifest update permissions (%llu) to meet the threshold of %llu",
              (unsigned long long)updaters, (unsigned long long)c->update_threshold);
    MR_ENSURE(c->seal_mode.len == 0 || mr_manifest_mstr_eq_c(&c->seal_mode, "ProductKey") ||
                  mr_manifest_mstr_eq_c(&c->seal_mode, "UniqueKey") ||
                  mr_manifest_mstr_eq_c(&c->seal_mode, "Disabled"),
              MR_ERR_USAGE, "unknown seal mode: %s", S(&c->seal_mode));
    for (size_t i = 0; i < c->feature_gates.count; i++) {
        const mr_mstr *g = &c->feature_gates.items[i];
        if (mr_manifest_equal_fold(S(g), g->len, "SignQuoteEndpoint", 17) ||
            mr_manifest_equal_fold(S(g), g->len, "MonotonicCounter", 16))
            continue;
        if (mr_manifest_equal_fold(S(g), g->len, "AzureHSMSealing", 15)) {
            MR_ENSURE(opts == NULL || opts->missing_hsm_env == NULL, MR_ERR_USAGE,
                      "manifest enables sealing with Azure HSM key, but required environment "
                      "variables are not set: %s",
                      opts ? opts->missing_hsm_env : "");
            continue;
        }
        MR_BAIL(MR_ERR_USAGE, "unknown feature gate: %s", S(g));
    }
    MR_ENSURE(c->recovery_threshold <= m->recovery_keys.count, MR_ERR_USAGE,
              "not enough recovery keys (%zu) defined to meet the recovery threshold of %llu",
              m->recovery_keys.count, (unsigned long long)c->recovery_threshold);
    MR_ENSURE(c->recovery_threshold != 1, MR_ERR_USAGE,
              "invalid recovery threshold: if set, threshold must be at least 2");
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_check(const mr_manifest *m, const mr_manifest_check_opts *opts)
{
    MR_ENSURE_REF(m);
    MR_ENSURE(m->packages.count > 0, MR_ERR_USAGE, "no allowed packages defined");
    MR_ENSURE(m->marbles.count > 0, MR_ERR_USAGE, "no allowed marbles defined");
    MR_GUARD(mr_manifest_check_tee_packages_(m));
    MR_GUARD(check_marbles(m));
    MR_GUARD(check_tls(m));
    MR_GUARD(check_users(m));
    MR_GUARD(check_roles(m));
    MR_GUARD(check_secrets(m));
    return check_config(m, opts);
}

/* ---- secret generation parameters (§7.2, texts of 1.7.0+) ---- */

/* ---- template dry run ---- */

static MR_RESULT dry_run_one(mr_manifest_tpl_check_fn check, void *ctx, mr_manifest_tpl_kind kind,
                             const mr_manifest_file *f, const mr_mstr *marble)
{
    if (check == NULL || f->no_templates)
        return MR_SUCCESS;
    if (mr_ok(check(ctx, kind, S(&f->data), f->data.len)))
        return MR_SUCCESS;
    if (mr_error_get()->cat == MR_ERR_INTERNAL)
        return MR_FAILURE;
    if (kind == MR_MANIFEST_TPL_FILE)
        mr_error_prefix("in Marble %s: file %s", S(marble), S(&f->name));
    else
        mr_error_prefix("in Marble %s: env variable %s", S(marble), S(&f->name));
    return MR_FAILURE;
}

MR_RESULT mr_manifest_template_dry_run(const mr_manifest *m, mr_manifest_tpl_check_fn check,
                                       void *ctx)
{
    MR_ENSURE_REF(m);
    for (size_t i = 0; i < m->marbles.count; i++) {
        const mr_manifest_marble *mb = &m->marbles.items[i];
        for (size_t j = 0; j < mb->parameters.files.count; j++)
            MR_GUARD(dry_run_one(check, ctx, MR_MANIFEST_TPL_FILE, &mb->parameters.files.items[j],
                                 &mb->name));
        for (size_t j = 0; j < mb->parameters.env.count; j++) {
            const mr_manifest_file *e = &mb->parameters.env.items[j];
            MR_ENSURE(e->data.len == 0 || memchr(e->data.ptr, 0, e->data.len) == NULL, MR_ERR_USAGE,
                      "in Marble %s: env variable: %s: content contains null bytes", S(&mb->name),
                      S(&e->name));
            MR_GUARD(dry_run_one(check, ctx, MR_MANIFEST_TPL_ENV, e, &mb->name));
        }
    }
    return MR_SUCCESS;
}

/* ---- permissions ---- */

static bool list_has(const mr_mstr_list *l, const char *s)
{
    for (size_t i = 0; i < l->count; i++)
        if (mr_manifest_mstr_eq_c(&l->items[i], s))
            return true;
    return false;
}

/* Does any role of u grant perm? With resource != NULL: does one of them list it? */
static bool user_grants(const mr_manifest *m, const mr_manifest_user *u, const char *perm,
                        const char *resource)
{
    for (size_t r = 0; r < u->roles.count; r++) {
        const mr_manifest_role *role = mr_manifest_map_find(
            m->roles.items, m->roles.count, sizeof(*role), S(&u->roles.items[r]),
            u->roles.items[r].len);
        if (role == NULL)
            continue;
        bool has = false;
        for (size_t a = 0; a < role->actions.count && !has; a++)
            has = action_is(&role->actions.items[a], perm);
        if (!has)
            continue;
        if (resource == NULL || list_has(&role->resource_names, resource))
            return true;
    }
    return false;
}

bool mr_manifest_user_permitted(const mr_manifest *m, const char *user, const char *perm,
                                const char *const *resources, size_t n)
{
    const mr_manifest_user *u = mr_manifest_find_user(m, user);
    if (u == NULL || perm == NULL || !user_grants(m, u, perm, NULL))
        return false;
    for (size_t i = 0; i < n; i++)
        if (resources[i] == NULL || !user_grants(m, u, perm, resources[i]))
            return false;
    return true;
}

MR_RESULT mr_manifest_update_users(const mr_manifest *m, const mr_manifest_user ***out,
                                   size_t *count)
{
    *out = NULL;
    *count = 0;
    MR_ENSURE_REF(m);
    const mr_manifest_user **v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < m->users.count; i++) {
        if (!user_grants(m, &m->users.items[i], MR_PERM_UPDATE_MANIFEST, NULL))
            continue;
        if (v == NULL) {
            v = mr_calloc(m->users.count, sizeof(const mr_manifest_user *));
            MR_ENSURE_ALLOC(v);
        }
        v[n++] = &m->users.items[i];
    }
    *out = v;
    *count = n;
    return MR_SUCCESS;
}

/* ---- updates ---- */

bool mr_manifest_is_package_update(const mr_manifest *m)
{
    return m->infrastructures.count == 0 && m->marbles.count == 0 && m->users.count == 0 &&
           m->recovery_keys.count == 0 && m->roles.count == 0 && m->secrets.count == 0 &&
           m->tls.count == 0;
}

MR_RESULT mr_manifest_check_package_update(const mr_manifest *update, const mr_manifest *current)
{
    MR_ENSURE_REF(update);
    MR_ENSURE_REF(current);
    MR_ENSURE(update->packages.count > 0, MR_ERR_USAGE, "no packages defined");
    for (size_t i = 0; i < update->packages.count; i++) {
        const mr_manifest_package *p = &update->packages.items[i];
        const mr_manifest_package *orig = mr_manifest_map_find(
            current->packages.items, current->packages.count, sizeof(*orig), S(&p->name),
            p->name.len);
        MR_ENSURE(orig != NULL, MR_ERR_USAGE,
                  "update manifest specifies a package which the original manifest does not contain");
        MR_ENSURE(!p->debug && p->unique_id.len == 0 && p->signer_id.len == 0 &&
                      !p->has_product_id && !p->tdx.present && !p->snp.present,
                  MR_ERR_USAGE, "update manifest contains unupdatable values");
        MR_ENSURE(!orig->tdx.present && !orig->snp.present, MR_ERR_USAGE,
                  "update manifest sets a SecurityVersion for package %s, which describes a "
                  "confidential VM (SecurityVersion applies to SGX enclaves only)",
                  S(&p->name));
        MR_ENSURE(p->has_security_version, MR_ERR_USAGE,
                  "update manifest does not specify a SecurityVersion to update");
        MR_ENSURE(!orig->has_security_version || p->security_version >= orig->security_version,
                  MR_ERR_USAGE,
                  "update manifest tries to downgrade SecurityVersion of the original manifest");
    }
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_check_full_update(const mr_manifest *next, const mr_manifest_check_opts *opts)
{
    if (mr_ok(mr_manifest_check(next, opts)))
        return MR_SUCCESS;
    if (mr_error_get()->cat != MR_ERR_INTERNAL)
        mr_error_prefix("invalid manifest");
    return MR_FAILURE;
}

uint64_t mr_manifest_required_acks(const mr_manifest *current)
{
    if (current->config.update_threshold != 0)
        return current->config.update_threshold;
    uint64_t n = 0;
    for (size_t i = 0; i < current->users.count; i++)
        if (user_grants(current, &current->users.items[i], MR_PERM_UPDATE_MANIFEST, NULL))
            n++;
    return n;
}

/* ---- equality ---- */

bool mr_manifest_secret_definition_equal(const mr_manifest_secret *a, const mr_manifest_secret *b)
{
    return mr_manifest_mstr_eq(&a->type, &b->type) && a->size == b->size &&
           a->shared == b->shared && a->user_defined == b->user_defined &&
           a->valid_for == b->valid_for;
}

bool mr_manifest_recovery_changed(const mr_manifest *a, const mr_manifest *b)
{
    if (a->recovery_keys.count != b->recovery_keys.count)
        return true;
    for (size_t i = 0; i < a->recovery_keys.count; i++) {
        const mr_manifest_recovery_key *x = &a->recovery_keys.items[i], *y = &b->recovery_keys.items[i];
        if (!mr_manifest_mstr_eq(&x->name, &y->name) || !mr_manifest_mstr_eq(&x->pem, &y->pem))
            return true;
    }
    uint64_t n = a->recovery_keys.count;
    uint64_t ta = a->config.recovery_threshold ? a->config.recovery_threshold : n;
    uint64_t tb = b->config.recovery_threshold ? b->config.recovery_threshold : n;
    return ta != tb;
}
