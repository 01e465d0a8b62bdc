/* SPDX-License-Identifier: Apache-2.0 */
/* The manifest side of TTLS beyond MarbleRun (docs/ttls.md): TLS entries' AllowedMarbleTypes
 * (decoded as Go would: a []string, case-insensitive field name) and Outgoing Cert, and their
 * consistency rules, checked after MarbleRun's. */
#include "mr_test.h"
#include "manifest/manifest.h"

/* Single quotes for readability, turned into double quotes. */
static mr_result decode_sq(const char *sq, mr_manifest **m)
{
    size_t n = strlen(sq);
    char *dq = mr_alloc(n + 1);
    if (dq == NULL)
        return MR_FAILURE;
    for (size_t i = 0; i <= n; i++)
        dq[i] = sq[i] == '\'' ? '"' : sq[i];
    mr_result r = mr_manifest_decode((const uint8_t *)dq, n, m);
    mr_free(dq);
    return r;
}

#define BASE                                                                                    \
    "'Packages':{'p':{'UniqueID':'ab'}},'Marbles':{'front':{'Package':'p','TLS':['t']},"        \
    "'back':{'Package':'p'}},'Secrets':{'ca':{'Type':'cert-ecdsa','Size':256}}"

static void test_decode(void **state)
{
    (void)state;
    mr_manifest *m = NULL;
    MR_ASSERT_OK(decode_sq("{" BASE ",'TLS':{'t':{'Incoming':[{'Port':'1','allowedmarbletypes':"
                           "['front','back']}],'Outgoing':[{'Addr':'a','Port':'2','Cert':'ca'}]}}}",
                           &m));
    const mr_manifest_tls_tag *t = mr_manifest_find_tls_tag(m, "t");
    assert_non_null(t);
    assert_int_equal(t->incoming.count, 1);
    const mr_mstr_list *types = &t->incoming.items[0].allowed_marble_types;
    assert_int_equal(types->count, 2);
    assert_string_equal(types->items[0].ptr, "front");
    assert_string_equal(types->items[1].ptr, "back");
    assert_int_equal(t->outgoing.items[0].allowed_marble_types.count, 0);
    assert_string_equal(t->outgoing.items[0].cert.ptr, "ca");
    MR_ASSERT_OK(mr_manifest_check(m, NULL));
    mr_manifest_free(m);
    /* the Go type: a string is not a []string */
    MR_ASSERT_FAIL(decode_sq("{" BASE ",'TLS':{'t':{'Incoming':[{'Port':'1','AllowedMarbleTypes':"
                             "'front'}]}}}",
                             &m),
                   MR_ERR_USAGE, "AllowedMarbleTypes");
}

static void test_check(void **state)
{
    (void)state;
    static const struct {
        const char *tls, *want;
    } cases[] = {
        {"{'t':{'Incoming':[{'Port':'1','AllowedMarbleTypes':['nobody']}]}}",
         "TLS.Incoming.t allows marble type nobody, which the manifest does not define"},
        {"{'t':{'Outgoing':[{'Addr':'a','Port':'1','AllowedMarbleTypes':['back','']}]}}",
         "TLS.Outgoing.t allows marble type , which the manifest does not define"},
        {"{'t':{'Incoming':[{'Port':'1','Cert':'ca','DisableClientAuth':true,"
         "'AllowedMarbleTypes':['back']}]}}",
         "TLS.Incoming.t restricts AllowedMarbleTypes, but its peer is not authenticated as a marble"},
        {"{'t':{'Outgoing':[{'Addr':'a','Port':'1','Cert':'ca','AllowedMarbleTypes':['back']}]}}",
         "TLS.Outgoing.t restricts AllowedMarbleTypes"},
        {"{'t':{'Outgoing':[{'Addr':'a','Port':'1','Cert':'nosuch'}]}}",
         "TLS.Outgoing.t references undefined secret nosuch"},
        /* MarbleRun's rules come first */
        {"{'t':{'Incoming':[{'Port':'','AllowedMarbleTypes':['nobody']}]}}",
         "manifest misses Port in TLS.Incoming.t"},
        {"{'t':{'Outgoing':[{'Port':'1','Cert':'nosuch'}]}}", "manifest misses Addr in TLS.Outgoing.t"},
        /* and what is fine */
        {"{'t':{'Incoming':[{'Port':'1','AllowedMarbleTypes':[]}]}}", NULL},
        {"{'t':{'Incoming':[{'Port':'1','AllowedMarbleTypes':['front','back']}],"
         "'Outgoing':[{'Addr':'a','Port':'1','AllowedMarbleTypes':['back']},{'Addr':'b','Port':'2',"
         "'Cert':'ca'}]}}",
         NULL},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        char doc[1024];
        (void)snprintf(doc, sizeof(doc), "{" BASE ",'TLS':%s}", cases[i].tls);
        mr_manifest *m = NULL;
        MR_ASSERT_OK(decode_sq(doc, &m));
        if (cases[i].want == NULL)
            MR_ASSERT_OK(mr_manifest_check(m, NULL));
        else
            MR_ASSERT_FAIL(mr_manifest_check(m, NULL), MR_ERR_USAGE, cases[i].want);
        mr_manifest_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
