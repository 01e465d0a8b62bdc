/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MARBLE_TTLS_CONFIG (spec/marble-cli-k8s.md §3.2, built by the Coordinator at activation), the
 * MARBLE_TTLS_ENDPOINTS list and the policy log lines. The JSON reader is a small strict
 * RFC 8259 parser over mr_cursor: only the shape of the config is kept, every other member is
 * skipped; strings are decoded into secret memory (the config carries the marble key).
 */
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/text.h"
#include "ttls/ttls.h"

#define DEPTH_MAX 32
#define STRING_MAX ((size_t)1 << 20)

typedef struct jp {
    mr_cursor c;
    unsigned depth;
} jp;

static size_t pos(const jp *p) { return p->c.pos; }

static MR_RESULT syntax(const jp *p, const char *what)
{
    MR_BAIL(MR_ERR_USAGE, "MARBLE_TTLS_CONFIG is not valid JSON: %s at offset %zu", what, pos(p));
}

static void ws(jp *p)
{
    for (;;) {
        mr_cursor save = p->c;
        uint8_t ch = 0;
        if (!mr_ok(mr_cursor_u8(&p->c, &ch)))
            return;
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            p->c = save;
            return;
        }
    }
}

/* The next byte after whitespace, without consuming it; false at the end. */
static bool peek(jp *p, uint8_t *ch)
{
    ws(p);
    mr_cursor save = p->c;
    bool ok = mr_ok(mr_cursor_u8(&save, ch));
    return ok;
}

static MR_RESULT expect(jp *p, uint8_t want, const char *what)
{
    uint8_t ch = 0;
    if (!peek(p, &ch) || ch != want)
        return syntax(p, what);
    MR_IGNORE(mr_cursor_skip(&p->c, 1));
    return MR_SUCCESS;
}

static MR_RESULT hex4(jp *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t ch = 0;
        if (!mr_ok(mr_cursor_u8(&p->c, &ch)) || mr_hex_digit(ch) < 0)
            return syntax(p, "bad \\u escape");
        v = v << 4 | (uint32_t)mr_hex_digit(ch);
    }
    *out = v;
    return MR_SUCCESS;
}

/* Decodes a string literal (the opening quote already seen by peek) and appends its bytes. */
static MR_RESULT string(jp *p, mr_buf *out)
{
    MR_GUARD(expect(p, '"', "expected a string"));
    for (;;) {
        uint8_t ch = 0;
        if (!mr_ok(mr_cursor_u8(&p->c, &ch)))
            return syntax(p, "unterminated string");
        if (ch == '"')
            return MR_SUCCESS;
        if (ch < 0x20)
            return syntax(p, "control character in string");
        MR_ENSURE(out->len < STRING_MAX, MR_ERR_USAGE, "MARBLE_TTLS_CONFIG: a string is too long");
        if (ch != '\\') {
            MR_GUARD(mr_buf_append_u8(out, ch));
            continue;
        }
        if (!mr_ok(mr_cursor_u8(&p->c, &ch)))
            return syntax(p, "unterminated string");
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *e = ch != 0 ? strchr(from, ch) : NULL;
        if (e != NULL) {
            MR_GUARD(mr_buf_append_u8(out, (uint8_t)to[e - from]));
            continue;
        }
        if (ch != 'u')
            return syntax(p, "bad escape");
        uint32_t r = 0;
        MR_GUARD(hex4(p, &r));
        if (r >= 0xD800 && r < 0xDC00) {
            /* a high surrogate: a low one must follow, else U+FFFD (as Go) */
            mr_cursor save = p->c;
            uint8_t b1 = 0, b2 = 0;
            uint32_t lo = 0;
            if (mr_ok(mr_cursor_u8(&p->c, &b1)) && b1 == '\\' && mr_ok(mr_cursor_u8(&p->c, &b2)) &&
                b2 == 'u' && mr_ok(hex4(p, &lo)) && lo >= 0xDC00 && lo < 0xE000) {
                r = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
            } else {
                p->c = save;
                r = MR_UTF8_RUNE_ERROR;
            }
        } else if (r >= 0xDC00 && r < 0xE000) {
            r = MR_UTF8_RUNE_ERROR;
        }
        MR_GUARD(mr_utf8_append(out, r));
    }
}

static MR_RESULT literal(jp *p, const char *word)
{
    size_t n = strlen(word);
    mr_slice v = {0};
    if (!mr_ok(mr_cursor_view(&p->c, n, &v)) || memcmp(v.ptr, word, n) != 0)
        return syntax(p, "invalid literal");
    return MR_SUCCESS;
}

static MR_RESULT skip_value(jp *p);

static MR_RESULT skip_number(jp *p)
{
    size_t digits = 0;
    for (;;) {
        mr_cursor save = p->c;
        uint8_t ch = 0;
        if (!mr_ok(mr_cursor_u8(&p->c, &ch)))
            break;
        if ((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == 'e' ||
            ch == 'E') {
            digits++;
            continue;
        }
        p->c = save;
        break;
    }
    return digits > 0 ? MR_SUCCESS : syntax(p, "invalid value");
}

/* Iterates the members of an object: call with *first = true after '{'. */
static MR_RESULT next_member(jp *p, bool *first, bool *more, mr_buf *key)
{
    uint8_t ch = 0;
    if (!peek(p, &ch))
        return syntax(p, "unterminated object");
    if (ch == '}') {
        MR_IGNORE(mr_cursor_skip(&p->c, 1));
        *more = false;
        return MR_SUCCESS;
    }
    if (!*first)
        MR_GUARD(expect(p, ',', "expected ',' or '}'"));
    *first = false;
    mr_buf_reset(key);
    MR_GUARD(string(p, key));
    MR_GUARD(expect(p, ':', "expected ':'"));
    *more = true;
    return MR_SUCCESS;
}

static MR_RESULT enter(jp *p, uint8_t open)
{
    MR_ENSURE(++p->depth <= DEPTH_MAX, MR_ERR_USAGE, "MARBLE_TTLS_CONFIG is nested too deeply");
    return expect(p, open, open == '{' ? "expected an object" : "expected an array");
}

static MR_RESULT skip_value(jp *p)
{
    mr_result res = MR_FAILURE;
    mr_buf tmp;
    mr_buf_init(&tmp, 0, MR_BUF_SECRET);
    uint8_t ch = 0;
    if (!peek(p, &ch)) {
        res = syntax(p, "unexpected end of input");
        goto out;
    }
    if (ch == '"') {
        res = string(p, &tmp);
    } else if (ch == '{') {
        MR_GUARD_OUT(enter(p, '{'));
        bool first = true, more = true;
        for (;;) {
            MR_GUARD_OUT(next_member(p, &first, &more, &tmp));
            if (!more)
                break;
            MR_GUARD_OUT(skip_value(p));
        }
        p->depth--;
        res = MR_SUCCESS;
    } else if (ch == '[') {
        MR_GUARD_OUT(enter(p, '['));
        for (bool first = true;; first = false) {
            if (!peek(p, &ch)) {
                res = syntax(p, "unterminated array");
                goto out;
            }
            if (ch == ']') {
                MR_IGNORE(mr_cursor_skip(&p->c, 1));
                break;
            }
            if (!first)
                MR_GUARD_OUT(expect(p, ',', "expected ',' or ']'"));
            MR_GUARD_OUT(skip_value(p));
        }
        p->depth--;
        res = MR_SUCCESS;
    } else if (ch == 't') {
        res = literal(p, "true");
    } else if (ch == 'f') {
        res = literal(p, "false");
    } else if (ch == 'n') {
        res = literal(p, "null");
    } else {
        res = skip_number(p);
    }
out:
    mr_buf_free(&tmp);
    return res;
}

static MR_RESULT boolean(jp *p, bool *out)
{
    uint8_t ch = 0;
    if (peek(p, &ch) && ch == 't') {
        *out = true;
        return literal(p, "true");
    }
    if (ch == 'f') {
        *out = false;
        return literal(p, "false");
    }
    return syntax(p, "expected true or false");
}

static bool key_is(const mr_buf *k, const char *name)
{
    return k->len == strlen(name) && memcmp(k->data, name, k->len) == 0;
}

/* ---- entry keys ---- */

static bool name_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

MR_RESULT mr_ttls_parse_key(const char *key, size_t len, mr_ttls_dir dir, mr_ttls_entry *e)
{
    MR_ENSURE(len > 0 && len < sizeof(e->key) && memchr(key, '\0', len) == NULL, MR_ERR_USAGE,
              "TTLS entry key has a bad length or a NUL byte");
    for (size_t i = 0; i < len; i++)
        MR_ENSURE((unsigned char)key[i] > 0x20 && key[i] != 0x7f, MR_ERR_USAGE,
                  "TTLS entry key has a space or a control character");
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->dir = dir;
    const char *colon = strrchr(e->key, ':');
    MR_ENSURE(colon != NULL, MR_ERR_USAGE, "TTLS entry %s has no port", e->key);
    const char *pp = colon + 1;
    size_t plen = strlen(pp);
    unsigned long port = 0;
    MR_ENSURE(plen > 0 && plen <= 5, MR_ERR_USAGE, "TTLS entry %s has an invalid port", e->key);
    for (size_t i = 0; i < plen; i++) {
        MR_ENSURE(pp[i] >= '0' && pp[i] <= '9', MR_ERR_USAGE, "TTLS entry %s has an invalid port",
                  e->key);
        port = port * 10 + (unsigned long)(pp[i] - '0');
    }
    MR_ENSURE(port >= 1 && port <= 65535, MR_ERR_USAGE, "TTLS entry %s has an invalid port",
              e->key);
    e->port = (uint16_t)port;
    e->host[0] = '\0';
    e->ip_family = 0;
    if (dir == MR_TTLS_INCOMING)
        return MR_SUCCESS; /* the Incoming address is ignored: ports only (§3.1) */
    size_t hlen = (size_t)(colon - e->key);
    const char *h = e->key;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    MR_ENSURE(hlen > 0 && hlen < sizeof(e->host), MR_ERR_USAGE,
              "TTLS entry %s has an invalid address", e->key);
    memcpy(e->host, h, hlen);
    e->host[hlen] = '\0';
    if (inet_pton(AF_INET, e->host, e->ip) == 1) {
        e->ip_family = AF_INET;
    } else if (inet_pton(AF_INET6, e->host, e->ip) == 1) {
        e->ip_family = AF_INET6;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(e->ip, mapped, sizeof(mapped)) == 0) {
            memmove(e->ip, e->ip + 12, 4);
            e->ip_family = AF_INET;
        }
    } else {
        MR_ENSURE(name_ok(e->host), MR_ERR_USAGE, "TTLS entry %s has an invalid address", e->key);
    }
    return MR_SUCCESS;
}

/* ---- entries ---- */

static MR_RESULT entry_types(jp *p, mr_ttls_entry *e, mr_buf *tmp)
{
    for (size_t i = 0; i < e->n_types; i++)
        mr_free(e->types[i]);
    mr_free(e->types);
    e->types = NULL;
    e->n_types = 0;
    MR_GUARD(enter(p, '['));
    for (bool first = true;; first = false) {
        uint8_t ch = 0;
        if (!peek(p, &ch))
            return syntax(p, "unterminated array");
        if (ch == ']') {
            MR_IGNORE(mr_cursor_skip(&p->c, 1));
            break;
        }
        if (!first)
            MR_GUARD(expect(p, ',', "expected ',' or ']'"));
        mr_buf_reset(tmp);
        MR_GUARD(string(p, tmp));
        MR_ENSURE(e->n_types < MR_TTLS_TYPES_MAX, MR_ERR_USAGE,
                  "TTLS entry %s allows too many marble types", e->key);
        MR_ENSURE(tmp->len > 0 && memchr(tmp->data, '\0', tmp->len) == NULL, MR_ERR_USAGE,
                  "TTLS entry %s has an empty or invalid marble type", e->key);
        char **grown = mr_realloc(e->types, (e->n_types + 1) * sizeof(char *));
        MR_ENSURE_ALLOC(grown);
        e->types = grown;
        e->types[e->n_types] = mr_strndup((const char *)tmp->data, tmp->len);
        MR_ENSURE_ALLOC(e->types[e->n_types]);
        e->n_types++;
    }
    p->depth--;
    return MR_SUCCESS;
}

static MR_RESULT entry_body(jp *p, mr_ttls_entry *e)
{
    mr_result res = MR_FAILURE;
    mr_buf key, tmp;
    mr_buf_init(&key, 0, 0);
    mr_buf_init(&tmp, 0, MR_BUF_SECRET);
    bool first = true, more = true;
    MR_GUARD_OUT(enter(p, '{'));
    for (;;) {
        MR_GUARD_OUT(next_member(p, &first, &more, &key));
        if (!more)
            break;
        mr_buf *dst = key_is(&key, "cacrt") ? &e->cacrt
                      : key_is(&key, "clicrt") ? &e->clicrt
                      : key_is(&key, "clikey") ? &e->clikey
                                               : NULL;
        if (dst != NULL) {
            mr_buf_reset(dst);
            MR_GUARD_OUT(string(p, dst));
        } else if (key_is(&key, "clientAuth")) {
            MR_GUARD_OUT(boolean(p, &e->client_auth));
        } else if (key_is(&key, "allowedTypes")) {
            MR_GUARD_OUT(entry_types(p, e, &tmp));
        } else {
            MR_GUARD_OUT(skip_value(p));
        }
    }
    p->depth--;
    MR_ENSURE_OUT(e->cacrt.len > 0, MR_ERR_USAGE, "TTLS entry %s has no cacrt", e->key);
    MR_ENSURE_OUT(e->clicrt.len > 0, MR_ERR_USAGE, "TTLS entry %s has no clicrt", e->key);
    MR_ENSURE_OUT(e->clikey.len > 0, MR_ERR_USAGE, "TTLS entry %s has no clikey", e->key);
    MR_GUARD_OUT(mr_buf_nul_terminate(&e->cacrt));
    MR_GUARD_OUT(mr_buf_nul_terminate(&e->clicrt));
    MR_GUARD_OUT(mr_buf_nul_terminate(&e->clikey));
    e->creds = true;
    res = MR_SUCCESS;
out:
    mr_buf_free(&key);
    mr_buf_free(&tmp);
    return res;
}

static MR_RESULT add_entry(mr_ttls_config *c, mr_ttls_entry **out)
{
    mr_ttls_entry *grown = mr_realloc(c->entries, (c->count + 1) * sizeof(*grown));
    MR_ENSURE_ALLOC(grown);
    c->entries = grown;
    mr_ttls_entry *e = &c->entries[c->count];
    memset(e, 0, sizeof(*e));
    mr_buf_init(&e->cacrt, STRING_MAX, 0);
    mr_buf_init(&e->clicrt, STRING_MAX, 0);
    mr_buf_init(&e->clikey, STRING_MAX, MR_BUF_SECRET);
    e->client_auth = true;
    c->count++;
    *out = e;
    return MR_SUCCESS;
}

static void set_bit(uint8_t *map, uint16_t port) { map[port >> 3] |= (uint8_t)(1u << (port & 7)); }

static MR_RESULT index_entry(mr_ttls_config *c, const mr_ttls_entry *e)
{
    for (size_t i = 0; i + 1 < c->count; i++)
        MR_ENSURE(c->entries[i].dir != e->dir || strcmp(c->entries[i].key, e->key) != 0,
                  MR_ERR_USAGE, "TTLS entry %s appears twice", e->key);
    if (e->dir == MR_TTLS_INCOMING) {
        for (size_t i = 0; i + 1 < c->count; i++)
            MR_ENSURE(c->entries[i].dir != MR_TTLS_INCOMING || c->entries[i].port != e->port,
                      MR_ERR_USAGE, "TTLS entries %s and %s name the same port",
                      c->entries[i].key, e->key);
        MR_ENSURE(++c->n_in <= MR_TTLS_ENTRIES_MAX, MR_ERR_USAGE, "too many TTLS entries");
        set_bit(c->in_ports, e->port);
    } else {
        MR_ENSURE(++c->n_out <= MR_TTLS_ENTRIES_MAX, MR_ERR_USAGE, "too many TTLS entries");
        if (e->ip_family == 0)
            c->n_out_names++;
        set_bit(c->out_ports, e->port);
    }
    return MR_SUCCESS;
}

static MR_RESULT direction(jp *p, mr_ttls_config *c, mr_ttls_dir dir)
{
    mr_result res = MR_FAILURE;
    mr_buf key;
    mr_buf_init(&key, 0, 0);
    bool first = true, more = true;
    MR_GUARD_OUT(enter(p, '{'));
    for (;;) {
        MR_GUARD_OUT(next_member(p, &first, &more, &key));
        if (!more)
            break;
        mr_ttls_entry *e = NULL;
        MR_GUARD_OUT(add_entry(c, &e));
        MR_GUARD_OUT(mr_ttls_parse_key((const char *)key.data, key.len, dir, e));
        MR_GUARD_OUT(entry_body(p, e));
        MR_GUARD_OUT(index_entry(c, e));
    }
    p->depth--;
    res = MR_SUCCESS;
out:
    mr_buf_free(&key);
    return res;
}

static MR_RESULT tls_object(jp *p, mr_ttls_config *c)
{
    mr_result res = MR_FAILURE;
    mr_buf key;
    mr_buf_init(&key, 0, 0);
    bool first = true, more = true;
    MR_GUARD_OUT(enter(p, '{'));
    for (;;) {
        MR_GUARD_OUT(next_member(p, &first, &more, &key));
        if (!more)
            break;
        if (key_is(&key, "Incoming"))
            MR_GUARD_OUT(direction(p, c, MR_TTLS_INCOMING));
        else if (key_is(&key, "Outgoing"))
            MR_GUARD_OUT(direction(p, c, MR_TTLS_OUTGOING));
        else
            MR_GUARD_OUT(skip_value(p));
    }
    p->depth--;
    res = MR_SUCCESS;
out:
    mr_buf_free(&key);
    return res;
}

MR_RESULT mr_ttls_config_parse(const char *json, size_t len, mr_ttls_config *out)
{
    mr_result res = MR_FAILURE;
    mr_buf key;
    mr_buf_init(&key, 0, 0);
    memset(out, 0, sizeof(*out));
    MR_ENSURE(len <= MR_TTLS_CONFIG_MAX, MR_ERR_USAGE, "MARBLE_TTLS_CONFIG is too large");
    jp p = {.depth = 0};
    mr_cursor_init(&p.c, json, len);
    bool first = true, more = true, seen = false;
    MR_GUARD_OUT(enter(&p, '{'));
    for (;;) {
        MR_GUARD_OUT(next_member(&p, &first, &more, &key));
        if (!more)
            break;
        if (key_is(&key, "tls")) {
            MR_ENSURE_OUT(!seen, MR_ERR_USAGE, "MARBLE_TTLS_CONFIG has two \"tls\" members");
            seen = true;
            MR_GUARD_OUT(tls_object(&p, out));
        } else {
            MR_GUARD_OUT(skip_value(&p));
        }
    }
    ws(&p);
    if (mr_cursor_remaining(&p.c) != 0) {
        res = syntax(&p, "data after the top-level value");
        goto out;
    }
    MR_ENSURE_OUT(out->count > 0, MR_ERR_USAGE, "TTLS config is empty");
    res = MR_SUCCESS;
out:
    mr_buf_free(&key);
    if (!mr_ok(res))
        mr_ttls_config_free(out);
    return res;
}

/* ---- MARBLE_TTLS_ENDPOINTS ---- */

MR_RESULT mr_ttls_config_parse_endpoints(const char *text, mr_ttls_config *out)
{
    mr_result res = MR_FAILURE;
    memset(out, 0, sizeof(*out));
    const char *s = text;
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        const char *end = strchr(s, ' ');
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        mr_ttls_dir dir = MR_TTLS_OUTGOING;
        size_t skip = 0;
        if (n > 3 && strncmp(s, "in=", 3) == 0) {
            dir = MR_TTLS_INCOMING;
            skip = 3;
        } else if (n > 4 && strncmp(s, "out=", 4) == 0) {
            skip = 4;
        } else {
            MR_BAIL_OUT(MR_ERR_USAGE, "%s: an item is neither in=... nor out=...",
                        MR_TTLS_ENDPOINTS_VAR);
        }
        mr_ttls_entry *e = NULL;
        MR_GUARD_OUT(add_entry(out, &e));
        MR_GUARD_OUT(mr_ttls_parse_key(s + skip, n - skip, dir, e));
        MR_GUARD_OUT(index_entry(out, e));
        s += n;
    }
    MR_ENSURE_OUT(out->count > 0, MR_ERR_USAGE, "%s is empty", MR_TTLS_ENDPOINTS_VAR);
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_ttls_config_free(out);
    return res;
}

MR_RESULT mr_ttls_config_endpoints(const mr_ttls_config *c, mr_buf *out)
{
    for (size_t i = 0; i < c->count; i++) {
        const mr_ttls_entry *e = &c->entries[i];
        MR_GUARD(mr_buf_printf(out, "%s%s%s", i > 0 ? " " : "",
                               e->dir == MR_TTLS_INCOMING ? "in=" : "out=", e->key));
    }
    return mr_buf_nul_terminate(out);
}

/* ---- policy lines ---- */

static MR_RESULT describe(const mr_ttls_entry *e, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "    %s", e->key));
    if (!e->creds)
        return mr_buf_append_str(out, " refused: this process has no TTLS credentials\n");
    if (e->dir == MR_TTLS_INCOMING)
        MR_GUARD(mr_buf_append_str(out, e->client_auth ? " client certificate required"
                                                       : " no client authentication"));
    else if (e->ip_family == 0)
        MR_GUARD(mr_buf_printf(out, " server verified (SNI and name check %s)", e->host));
    else
        MR_GUARD(mr_buf_append_str(out, " server verified (no name check for an address)"));
    if (e->n_types > 0) {
        MR_GUARD(mr_buf_append_str(out, ", marble types:"));
        for (size_t i = 0; i < e->n_types; i++) {
            mr_buf q;
            mr_buf_init(&q, 4096, 0);
            mr_result r = mr_json_quote(&q, e->types[i], strlen(e->types[i]));
            if (mr_ok(r))
                r = mr_buf_printf(out, "%s %.*s", i > 0 ? "," : "", (int)q.len, (const char *)q.data);
            mr_buf_free(&q);
            MR_GUARD(r);
        }
    }
    return mr_buf_append_u8(out, '\n');
}

MR_RESULT mr_ttls_policy_lines(const mr_ttls_config *c, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, "TTLS config\n"));
    for (int d = 1; d >= 0; d--) {
        bool head = false;
        for (size_t i = 0; i < c->count; i++) {
            const mr_ttls_entry *e = &c->entries[i];
            if ((int)e->dir != d)
                continue;
            if (!head)
                MR_GUARD(mr_buf_append_str(out, d == MR_TTLS_INCOMING ? "  Incoming\n"
                                                                      : "  Outgoing\n"));
            head = true;
            MR_GUARD(describe(e, out));
        }
    }
    return mr_buf_nul_terminate(out);
}

/* ---- release ---- */

static void entry_free(mr_ttls_entry *e)
{
    mr_buf_free(&e->cacrt);
    mr_buf_free(&e->clicrt);
    mr_buf_free(&e->clikey);
    for (size_t i = 0; i < e->n_types; i++)
        mr_free(e->types[i]);
    mr_free(e->types);
    e->types = NULL;
    e->n_types = 0;
    SSL_CTX_free(e->ctx);
    e->ctx = NULL;
}

void mr_ttls_config_free(mr_ttls_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->count; i++)
        entry_free(&c->entries[i]);
    mr_free(c->entries);
    memset(c, 0, sizeof(*c));
}
