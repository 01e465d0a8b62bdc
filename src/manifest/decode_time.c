/* SPDX-License-Identifier: Apache-2.0 */
/*
 * time.Time.UnmarshalJSON (decode_int.h): strict RFC 3339 through common/text, and Go's
 * error texts for the strings it rejects.
 */
#include <string.h>

#include "common/text.h"
#include "manifest/decode_int.h"

/* Strict RFC 3339 as time.Time.UnmarshalJSON accepts it. */
static bool parse_rfc3339(const char *s, size_t len, mr_manifest_time *t)
{
    mr_rfc3339_time rt;
    if (mr_rfc3339_parse(s, len, 0, &rt) != MR_RFC3339_OK)
        return false;
    t->unix_sec = rt.unix_sec;
    t->nsec = rt.nsec;
    /* Go's zero time is 0001-01-01T00:00:00Z */
    t->set = !(rt.unix_sec == mr_days_from_civil(1, 1, 1) * 86400 && rt.nsec == 0);
    return true;
}

#define RFC3339 "2006-01-02T15:04:05Z07:00"

/* Where time.Parse is in the string while it walks the layout's elements. */
typedef struct tparse {
    const char *s;
    size_t len;
    size_t p;
    unsigned year, month, day;
    const char *range; /* the element found out of range ("month", ...), NULL while none */
} tparse;

static bool isdig(const tparse *t, size_t i)
{
    return i < t->len && t->s[i] >= '0' && t->s[i] <= '9';
}

static unsigned dig(const tparse *t, size_t i) { return (unsigned)(t->s[i] - '0'); }

/* "2006": four digits. */
static bool elem_year(tparse *t)
{
    size_t p = t->p;
    if (!(isdig(t, p) && isdig(t, p + 1) && isdig(t, p + 2) && isdig(t, p + 3)))
        return false;
    t->year = dig(t, p) * 1000 + dig(t, p + 1) * 100 + dig(t, p + 2) * 10 + dig(t, p + 3);
    t->p += 4;
    return true;
}

/* "15": one or two digits. */
static bool elem_hour(tparse *t)
{
    if (!isdig(t, t->p))
        return false;
    unsigned v = dig(t, t->p++);
    if (isdig(t, t->p))
        v = v * 10 + dig(t, t->p++);
    if (v > 23)
        t->range = "hour";
    return true;
}

/* "01", "02", "04", "05": fixed two digits; fractional seconds follow "05". */
static bool elem_two_digits(tparse *t, const char *el)
{
    if (!(isdig(t, t->p) && isdig(t, t->p + 1)))
        return false;
    unsigned v = dig(t, t->p) * 10 + dig(t, t->p + 1);
    t->p += 2;
    if (strcmp(el, "01") == 0) {
        t->month = v;
        if (v < 1 || v > 12)
            t->range = "month";
    } else if (strcmp(el, "02") == 0) {
        t->day = v;
        if (v < 1 || v > 31)
            t->range = "day";
    } else if (strcmp(el, "04") == 0) {
        if (v > 59)
            t->range = "minute";
    } else {
        if (v > 59)
            t->range = "second";
        if (t->p + 1 < t->len && (t->s[t->p] == '.' || t->s[t->p] == ',') && isdig(t, t->p + 1)) {
            t->p++;
            while (isdig(t, t->p))
                t->p++;
        }
    }
    return true;
}

/* "Z07:00": Z or a numeric offset +hh:mm / -hh:mm. */
static bool elem_zone(tparse *t)
{
    const char *s = t->s;
    size_t p = t->p;
    if (p < t->len && s[p] == 'Z') {
        t->p++;
        return true;
    }
    if (!(t->len - p >= 6 && (s[p] == '+' || s[p] == '-') && s[p + 3] == ':' && isdig(t, p + 1) &&
          isdig(t, p + 2) && isdig(t, p + 4) && isdig(t, p + 5)))
        return false;
    t->p += 6;
    return true;
}

static bool elem_literal(tparse *t, const char *el)
{
    size_t n = strlen(el);
    if (!(t->len - t->p >= n && memcmp(t->s + t->p, el, n) == 0))
        return false;
    t->p += n;
    return true;
}

/* One element of the layout at the current position; false when it does not parse. */
static bool parse_elem(tparse *t, const char *el)
{
    if (strcmp(el, "2006") == 0)
        return elem_year(t);
    if (strcmp(el, "15") == 0)
        return elem_hour(t);
    if (el[0] >= '0' && el[0] <= '9')
        return elem_two_digits(t, el);
    if (strcmp(el, "Z07:00") == 0)
        return elem_zone(t);
    return elem_literal(t, el);
}

/* The error for a string that time.Parse accepts with the RFC 3339 layout: the day of the
 * month, then parseStrictRFC3339's extra checks. Always fails. */
static MR_RESULT strict_error(const tparse *t)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *s = t->s;
    size_t len = t->len;
    bool leap = (t->year % 4 == 0 && t->year % 100 != 0) || t->year % 400 == 0;
    if (t->day > mdays[t->month - 1] + (t->month == 2 && leap ? 1u : 0u))
        MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": day out of range", (int)len, s);
    /* accepted by time.Parse but not by the strict RFC 3339 rules */
    if (len > 12 && s[12] == ':')
        MR_BAIL(MR_ERR_USAGE,
                "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \"%c\" as \"15\"",
                (int)len, s, s[11]);
    if (len > 19 && s[19] == ',')
        MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \",\" as \".\"",
                (int)len, s);
    if (s[len - 1] != 'Z') {
        unsigned th = (unsigned)(s[len - 5] - '0') * 10 + (unsigned)(s[len - 4] - '0');
        unsigned tm = (unsigned)(s[len - 2] - '0') * 10 + (unsigned)(s[len - 1] - '0');
        if (th >= 24)
            MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": timezone hour out of range", (int)len, s);
        if (tm >= 60)
            MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": timezone minute out of range", (int)len,
                    s);
    }
    MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \"%.*s\" as \"" RFC3339
            "\"", (int)len, s, (int)len, s);
}

/* The error time.Time.UnmarshalJSON reports for a string that is not strict RFC 3339: walks
 * the layout elements as time.Parse does, then applies parseStrictRFC3339's extra checks.
 * Always fails. */
static MR_RESULT time_error(const char *s, size_t len)
{
    static const char *const elems[] = {"2006", "-", "01", "-", "02", "T", "15", ":",
                                        "04",   ":", "05", "Z07:00"};
    tparse t = {.s = s, .len = len};
    for (size_t e = 0; e < MR_ARRAY_LEN(elems); e++) {
        size_t start = t.p;
        if (!parse_elem(&t, elems[e]))
            MR_BAIL(MR_ERR_USAGE,
                    "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \"%.*s\" as \"%s\"",
                    (int)len, s, (int)(len - start), s + start, elems[e]);
        if (t.range != NULL)
            MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": %s out of range", (int)len, s, t.range);
    }
    if (t.p < len)
        MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": extra text: \"%.*s\"", (int)len, s,
                (int)(len - t.p), s + t.p);
    return strict_error(&t);
}

MR_RESULT mr_mdec_time(mr_mj_node *v, mr_manifest_time *t)
{
    if (v->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    MR_ENSURE(v->kind == MR_MJ_STRING, MR_ERR_USAGE,
              "Time.UnmarshalJSON: input is not a JSON string");
    mr_manifest_time tmp = {0};
    if (!parse_rfc3339(v->str, v->len, &tmp))
        return time_error(v->str, v->len);
    *t = tmp;
    return MR_SUCCESS;
}
