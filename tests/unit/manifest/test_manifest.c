/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/log.h"
#include "manifest/manifest.h"

/* ---- helpers ---- */

/* Test JSON is written with single quotes for readability; this turns them into double
 * quotes. The caller frees the result. */
static char *J(const char *sq)
{
    char *s = mr_strdup(sq);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static mr_result decode_sq(const char *sq, mr_manifest **m)
{
    char *s = J(sq);
    mr_result r = mr_manifest_decode((const uint8_t *)s, strlen(s), m);
    mr_free(s);
    return r;
}

static mr_manifest *dec_ok(const char *sq)
{
    mr_manifest *m = NULL;
    MR_ASSERT_OK(decode_sq(sq, &m));
    assert_non_null(m);
    return m;
}

/* The call must fail with exactly this message. */
#define ASSERT_FAIL_EXACT(call, text)                                                         \
    do {                                                                                      \
        mr_error_clear();                                                                     \
        if (mr_ok(call))                                                                      \
            fail_msg("%s unexpectedly succeeded (want \"%s\")", #call, (text));               \
        if (strcmp(mr_error_get()->msg, (text)) != 0)                                         \
            fail_msg("%s: got \"%s\"\n   want \"%s\"", #call, mr_error_get()->msg, (text));   \
    } while (0)

static void dec_fail(const char *sq, const char *text)
{
    mr_manifest *m = NULL;
    ASSERT_FAIL_EXACT(decode_sq(sq, &m), text);
    assert_int_equal(mr_error_get()->cat, MR_ERR_USAGE);
    assert_null(m);
}

static char *read_file(const char *rel, size_t *len)
{
    const char *src = getenv("MR_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        MR_ASSERT_OK(mr_buf_append(&b, tmp, n));
    fclose(f);
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    *len = b.len;
    char *p = (char *)mr_buf_steal(&b, len);
    if (p == NULL) {
        p = mr_strdup("");
        *len = 0;
    }
    return p;
}

static mr_manifest *load_fixture(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "tests/fixtures/manifests/%s", name);
    size_t len;
    char *data = read_file(rel, &len);
    mr_manifest *m = NULL;
    MR_ASSERT_OK(mr_manifest_decode((const uint8_t *)data, len, &m));
    mr_free(data);
    return m;
}

#define BASE_P "'Packages':{'p':{'UniqueID':'ab'}}"
#define BASE_M "'Marbles':{'m':{'Package':'p'}}"
#define BASE BASE_P "," BASE_M

/* ---- decoder: JSON syntax ---- */

static void test_decode_syntax(void **state)
{
    (void)state;
    dec_fail("", "unexpected end of JSON input");
    dec_fail("{", "unexpected end of JSON input");
    dec_fail("{'Packages' 1}", "invalid character '1' after object key");
    dec_fail("{'a':1 'b':2}", "invalid character '\"' after object key:value pair");
    dec_fail("{1:2}", "invalid character '1' looking for beginning of object key string");
    dec_fail("[1 2]", "invalid character '2' after array element");
    dec_fail("x", "invalid character 'x' looking for beginning of value");
    dec_fail("{} x", "invalid character 'x' after top-level value");
    dec_fail("{}{}", "invalid character '{' after top-level value");
    dec_fail("{'a':tru}", "invalid character '}' in literal true (expecting 'e')");
    dec_fail("{'a':01}", "invalid character '1' after object key:value pair");
    dec_fail("{'a':-}", "invalid character '}' in numeric literal");
    dec_fail("{'a':1.}", "invalid character '}' after decimal point in numeric literal");
    dec_fail("{'a':1e}", "invalid character '}' in exponent of numeric literal");
    dec_fail("{'a':'\\x'}", "invalid character 'x' in string escape code");
    dec_fail("{'a':'\\u12g4'}", "invalid character 'g' in \\u hexadecimal character escape");
    dec_fail("{'a':'\x01'}", "invalid character '\\x01' in string literal");
    dec_fail("{'a':'\n'}", "invalid character '\\n' in string literal");
    dec_fail("{'a':'}", "unexpected end of JSON input");
    dec_fail("\xef\xbb\xbf{}", "invalid character '\xc3\xaf' looking for beginning of value");
    dec_fail("{'a':\x80}", "invalid character '\\u0080' looking for beginning of value");

    /* nesting is capped */
    char deep[600];
    memset(deep, '[', 300);
    deep[300] = '\0';
    dec_fail(deep, "exceeded max depth");

    /* the top level must be an object (null is the zero manifest) */
    dec_fail("[]", "json: cannot unmarshal array into Go value of type manifest.Manifest");
    dec_fail("'x'", "json: cannot unmarshal string into Go value of type manifest.Manifest");
    mr_manifest *m = dec_ok("null");
    assert_int_equal(m->packages.count, 0);
    mr_manifest_free(m);

    /* trailing whitespace is fine */
    m = dec_ok("{} \n\t\r ");
    mr_manifest_free(m);
}

/* ---- decoder: field names ---- */

static void test_decode_case_folding(void **state)
{
    (void)state;
    /* lower case, upper case, mixed */
    mr_manifest *m = dec_ok("{'packages':{'P':{'uniqueid':'x','SIGNERID':'y','debug':true}},"
                            "'MARBLES':{'m':{'pAcKaGe':'P'}}}");
    assert_int_equal(m->packages.count, 1);
    assert_string_equal(m->packages.items[0].name.ptr, "P");
    assert_string_equal(m->packages.items[0].unique_id.ptr, "x");
    assert_string_equal(m->packages.items[0].signer_id.ptr, "y");
    assert_true(m->packages.items[0].debug);
    assert_string_equal(m->marbles.items[0].package.ptr, "P");
    mr_manifest_free(m);

    /* U+017F LATIN SMALL LETTER LONG S folds to s; U+212A KELVIN SIGN folds to k */
    m = dec_ok("{'\xc5\xbf" "ecrets':{'a':{'Type':'plain'}},'Pac\xe2\x84\xaa" "ages':{'b':{}}}");
    assert_int_equal(m->secrets.count, 1);
    assert_string_equal(m->secrets.items[0].type.ptr, "plain");
    assert_int_equal(m->packages.count, 1);
    mr_manifest_free(m);

    /* other look-alikes do not match: U+0131 dotless i, fullwidth letters */
    m = dec_ok("{'Marbles':{'m':{'Package':'p','D\xc4\xb1sableSecretBinding':true}},"
               "'\xef\xbc\xb0" "ackages':{'x':{}}}");
    assert_false(m->marbles.items[0].disable_secret_binding);
    assert_int_equal(m->packages.count, 0);
    mr_manifest_free(m);

    /* map keys are case-sensitive: two entries */
    m = dec_ok("{'Packages':{'a':{},'A':{}}}");
    assert_int_equal(m->packages.count, 2);
    assert_string_equal(m->packages.items[0].name.ptr, "A");
    assert_string_equal(m->packages.items[1].name.ptr, "a");
    assert_non_null(mr_manifest_find_package(m, "a"));
    assert_null(mr_manifest_find_package(m, "b"));
    mr_manifest_free(m);

    /* unknown keys are ignored, whatever their type */
    m = dec_ok("{'Foo':[1,{'x':null}],'Packages':{'a':{'Bar':{},'Debug':true}},'Clients':1}");
    assert_true(m->packages.items[0].debug);
    mr_manifest_free(m);
}

/* ---- decoder: duplicates and merges ---- */

static void test_decode_duplicates(void **state)
{
    (void)state;
    /* scalars: last wins; slices: last wins */
    mr_manifest *m = dec_ok("{'Marbles':{'m':{'Package':'a','Package':'b','MaxActivations':1,"
                            "'maxactivations':7,'TLS':['x','y'],'tls':['z']}}}");
    const mr_manifest_marble *mb = mr_manifest_find_marble(m, "m");
    assert_string_equal(mb->package.ptr, "b");
    assert_int_equal(mb->max_activations, 7);
    assert_int_equal(mb->tls.count, 1);
    assert_string_equal(mb->tls.items[0].ptr, "z");
    mr_manifest_free(m);

    /* a repeated map field merges entry by entry (also in a different spelling) */
    m = dec_ok("{'Packages':{'a':{'SignerID':'1'},'b':{}},'packages':{'c':{},'a':{'UniqueID':'2'}}}");
    assert_int_equal(m->packages.count, 3);
    const mr_manifest_package *p = mr_manifest_find_package(m, "a");
    /* the entry itself is replaced, not merged */
    assert_null(p->signer_id.ptr);
    assert_string_equal(p->unique_id.ptr, "2");
    mr_manifest_free(m);

    /* a duplicate key inside one map replaces the entry */
    m = dec_ok("{'Secrets':{'s':{'Type':'plain','Shared':true},'s':{'Type':'cert-rsa'}}}");
    assert_int_equal(m->secrets.count, 1);
    assert_string_equal(m->secrets.items[0].type.ptr, "cert-rsa");
    assert_false(m->secrets.items[0].shared);
    mr_manifest_free(m);

    /* nested structs merge field by field; their maps merge too */
    m = dec_ok("{'Marbles':{'m':{'Parameters':{'Argv':['a'],'Files':{'/x':'1'}},"
               "'Parameters':{'Files':{'/y':'2'},'Env':{'E':'e'}}}}}");
    mb = mr_manifest_find_marble(m, "m");
    assert_int_equal(mb->parameters.argv.count, 1);
    assert_int_equal(mb->parameters.files.count, 2);
    assert_int_equal(mb->parameters.env.count, 1);
    mr_manifest_free(m);

    /* a repeated slice is decoded into the elements it already has, then truncated */
    m = dec_ok("{'Marbles':{'m':{'Parameters':{'Argv':['a','b','c'],'Argv':[null,'y']}}},"
               "'TLS':{'t':{'Incoming':[{'Port':'1','Cert':'c'},{'Port':'2'}],"
               "'Incoming':[{'Port':'3'}]}},'Infrastructures':{'i':{'CPUSVN':[1,2],"
               "'CPUSVN':[null,7,8]}}}");
    const mr_mstr_list *argv = &m->marbles.items[0].parameters.argv;
    assert_int_equal(argv->count, 2);
    assert_string_equal(argv->items[0].ptr, "a");
    assert_string_equal(argv->items[1].ptr, "y");
    const mr_manifest_tls_list *in = &m->tls.items[0].incoming;
    assert_int_equal(in->count, 1);
    assert_string_equal(in->items[0].port.ptr, "3");
    assert_string_equal(in->items[0].cert.ptr, "c");
    assert_memory_equal(m->infrastructures.items[0].cpusvn.ptr, "\x01\x07\x08", 3);
    mr_manifest_free(m);
    m = dec_ok("{'Marbles':{'m':{'TLS':['a'],'TLS':[]}}}");
    assert_true(m->marbles.items[0].tls.present);
    assert_int_equal(m->marbles.items[0].tls.count, 0);
    mr_manifest_free(m);

    /* Config twice: merged */
    m = dec_ok("{'Config':{'SealMode':'UniqueKey'},'Config':{'UpdateThreshold':3}}");
    assert_string_equal(m->config.seal_mode.ptr, "UniqueKey");
    assert_int_equal(m->config.update_threshold, 3);
    mr_manifest_free(m);
}

/* ---- decoder: null ---- */

static void test_decode_null(void **state)
{
    (void)state;
    /* null leaves scalars as they were */
    mr_manifest *m = dec_ok("{'Packages':{'a':{'Debug':true,'Debug':null,'UniqueID':'u',"
                            "'UniqueID':null,'ProductID':5,'ProductID':null,'SecurityVersion':0,"
                            "'AcceptedTCBStatuses':['x'],'AcceptedTCBStatuses':null}}}");
    const mr_manifest_package *p = &m->packages.items[0];
    assert_true(p->debug);
    assert_string_equal(p->unique_id.ptr, "u");
    assert_false(p->has_product_id); /* pointer → nil */
    assert_true(p->has_security_version);
    assert_int_equal(p->security_version, 0);
    assert_false(p->accepted_tcb_statuses.present); /* slice → nil */
    mr_manifest_free(m);

    /* a map set to null is dropped */
    m = dec_ok("{'Packages':{'a':{}},'Packages':null,'Marbles':null,'Config':null}");
    assert_int_equal(m->packages.count, 0);
    assert_false(m->packages.present);
    mr_manifest_free(m);

    /* null map entry → zero value entry */
    m = dec_ok("{'Packages':{'a':null}}");
    assert_int_equal(m->packages.count, 1);
    mr_manifest_free(m);

    /* File values cannot be null (MarbleRun's File.UnmarshalJSON) */
    dec_fail("{'Marbles':{'m':{'Parameters':{'Files':{'/a':null}}}}}",
             "got: %!t(<nil>), expected: string or interface");
}

/* ---- decoder: numbers ---- */

static void test_decode_unsigned(void **state)
{
    (void)state;
    dec_fail("{'Packages':{'a':{'SecurityVersion':-1}}}",
             "json: cannot unmarshal number -1 into Go struct field PackageProperties.Packages."
             "SecurityVersion of type uint");
    dec_fail("{'Packages':{'a':{'SecurityVersion':1.0}}}",
             "json: cannot unmarshal number 1.0 into Go struct field PackageProperties.Packages."
             "SecurityVersion of type uint");
    dec_fail("{'Packages':{'a':{'ProductID':1e3}}}",
             "json: cannot unmarshal number 1e3 into Go struct field PackageProperties.Packages."
             "ProductID of type uint64");
    dec_fail("{'Packages':{'a':{'ProductID':18446744073709551616}}}",
             "json: cannot unmarshal number 18446744073709551616 into Go struct field "
             "PackageProperties.Packages.ProductID of type uint64");
    dec_fail("{'Packages':{'a':{'ProductID':-0}}}",
             "json: cannot unmarshal number -0 into Go struct field PackageProperties.Packages."
             "ProductID of type uint64");
    dec_fail("{'Infrastructures':{'i':{'QESVN':65536}}}",
             "json: cannot unmarshal number 65536 into Go struct field InfrastructureProperties."
             "Infrastructures.QESVN of type uint16");
    dec_fail("{'Marbles':{'m':{'MaxActivations':'5'}}}",
             "json: cannot unmarshal string into Go struct field Marble.Marbles.MaxActivations of "
             "type uint");
    dec_fail("{'Secrets':{'s':{'Size':true}}}",
             "json: cannot unmarshal bool into Go struct field Secret.Secrets.Size of type uint");
    dec_fail("{'Config':{'UpdateThreshold':-3}}",
             "json: cannot unmarshal number -3 into Go struct field Config.Config.UpdateThreshold "
             "of type uint");

    mr_manifest *m = dec_ok("{'Packages':{'a':{'ProductID':18446744073709551615,"
                            "'SecurityVersion':0}},'Infrastructures':{'i':{'QESVN':65535,"
                            "'PCESVN':0}}}");
    assert_true(m->packages.items[0].has_product_id);
    assert_true(m->packages.items[0].product_id == UINT64_MAX);
    assert_int_equal(m->infrastructures.items[0].qesvn, 65535);
    assert_true(m->infrastructures.items[0].has_pcesvn);
    mr_manifest_free(m);
}

static void test_decode_types(void **state)
{
    (void)state;
    dec_fail("{'Packages':{'a':{'Debug':'true'}}}",
             "json: cannot unmarshal string into Go struct field PackageProperties.Packages.Debug "
             "of type bool");
    dec_fail("{'Packages':{'a':{'UniqueID':5}}}",
             "json: cannot unmarshal number into Go struct field PackageProperties.Packages."
             "UniqueID of type string");
    dec_fail("{'Packages':[]}", "json: cannot unmarshal array into Go struct field Manifest."
                                "Packages of type map[string]quote.PackageProperties");
    dec_fail("{'Packages':{'a':1}}", "json: cannot unmarshal number into Go struct field "
                                     "Manifest.Packages of type quote.PackageProperties");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Argv':['a',1]}}}}",
             "json: cannot unmarshal number into Go struct field Parameters.Marbles.Parameters."
             "Argv of type string");
    dec_fail("{'Marbles':{'m':{'TLS':'web'}}}",
             "json: cannot unmarshal string into Go struct field Marble.Marbles.TLS of type "
             "[]string");
    dec_fail("{'TLS':{'t':{'Incoming':[{'Port':443}]}}}",
             "json: cannot unmarshal number into Go struct field TLSTagEntry.TLS.Incoming.Port of "
             "type string");
    dec_fail("{'RecoveryKeys':{'k':{}}}", "json: cannot unmarshal object into Go struct field "
                                          "Manifest.RecoveryKeys of type string");

    /* the first type error is reported, after decoding went on */
    dec_fail("{'Packages':{'a':{'Debug':1,'UniqueID':2}}}",
             "json: cannot unmarshal number into Go struct field PackageProperties.Packages.Debug "
             "of type bool");
    /* a File error stops decoding at once and wins over an earlier type error */
    dec_fail("{'Packages':{'a':{'Debug':1}},'Marbles':{'m':{'Parameters':{'Env':{'E':{"
             "'Data':'x','Encoding':'rot13'}}}}}}",
             "unknown encoding type: rot13");
}

/* ---- decoder: []byte, strings ---- */

static void test_decode_bytes_and_strings(void **state)
{
    (void)state;
    mr_manifest *m = dec_ok("{'Infrastructures':{'i':{'CPUSVN':'AAEC\\r\\nAw==','RootCA':''},"
                            "'j':{'CPUSVN':[1,2,255]}}}");
    const mr_manifest_infra *i = mr_manifest_find_infra(m, "i");
    assert_int_equal(i->cpusvn.len, 4);
    assert_memory_equal(i->cpusvn.ptr, "\x00\x01\x02\x03", 4);
    assert_true(i->root_ca.present);
    assert_int_equal(i->root_ca.len, 0);
    const mr_manifest_infra *j = mr_manifest_find_infra(m, "j");
    assert_memory_equal(j->cpusvn.ptr, "\x01\x02\xff", 3);
    mr_manifest_free(m);

    mr_manifest *bad = NULL;
    MR_ASSERT_FAIL(decode_sq("{'Infrastructures':{'i':{'CPUSVN':'AAE'}}}", &bad), MR_ERR_USAGE,
                   "illegal base64 data at input byte ");
    assert_null(bad);
    dec_fail("{'Infrastructures':{'i':{'RootCA':5}}}",
             "json: cannot unmarshal number into Go struct field InfrastructureProperties."
             "Infrastructures.RootCA of type []uint8");

    /* escapes, surrogate pairs, lone surrogates and invalid UTF-8 */
    m = dec_ok("{'Marbles':{'m':{'Parameters':{'Argv':['\\u00e9\\ud83d\\ude00','\\ud800x',"
               "'a\xff" "b','\\/\\b\\f\\n\\r\\t\\u0000']}}}}");
    const mr_mstr_list *a = &m->marbles.items[0].parameters.argv;
    assert_string_equal(a->items[0].ptr, "\xc3\xa9\xf0\x9f\x98\x80");
    assert_string_equal(a->items[1].ptr, "\xef\xbf\xbdx");
    assert_string_equal(a->items[2].ptr, "a\xef\xbf\xbd" "b");
    assert_int_equal(a->items[3].len, 7);
    assert_memory_equal(a->items[3].ptr, "/\b\f\n\r\t\0", 7);
    mr_manifest_free(m);
}

/* ---- decoder: Files and Env ---- */

static void test_decode_files(void **state)
{
    (void)state;
    mr_manifest *m = dec_ok(
        "{'Marbles':{'m':{'Parameters':{'Files':{'/s':'plain {{ x }}',"
        "'/b':{'Data':'aGVs\\nbG8=','Encoding':'BASE64'},'/h':{'data':'00FFab','encoding':'Hex',"
        "'notemplates':true},'/e':{'Data':'x'}},'Env':{'A':{'Encoding':'','Data':'y'}}}}}}");
    const mr_manifest_marble *mb = &m->marbles.items[0];
    const mr_manifest_file *f = mb->parameters.files.items;
    /* sorted: /b /e /h /s */
    assert_string_equal(f[0].name.ptr, "/b");
    assert_string_equal(f[0].data.ptr, "hello");
    assert_string_equal(f[0].encoding.ptr, "BASE64");
    assert_string_equal(f[1].encoding.ptr, "string");
    assert_int_equal(f[2].data.len, 3);
    assert_memory_equal(f[2].data.ptr, "\x00\xff\xab", 3);
    assert_true(f[2].no_templates);
    assert_string_equal(f[3].data.ptr, "plain {{ x }}");
    assert_string_equal(f[3].encoding.ptr, "string");
    assert_false(f[3].no_templates);
    assert_string_equal(mb->parameters.env.items[0].encoding.ptr, "string");
    mr_manifest_free(m);

    dec_fail("{'Marbles':{'m':{'Parameters':{'Files':{'/a':{'Data':'x','Encoding':'utf8'}}}}}}",
             "unknown encoding type: utf8");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Files':{'/a':{'Data':'a=b','Encoding':'base64'}}}}}}",
             "illegal base64 data at input byte 1");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Files':{'/a':{'Data':'abc','Encoding':'hex'}}}}}}",
             "encoding/hex: odd length hex string");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Env':{'A':{'Data':'zz','Encoding':'hex'}}}}}}",
             "encoding/hex: invalid byte: U+007A 'z'");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Env':{'A':true}}}}}",
             "got: true, expected: string or interface");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Env':{'A':12}}}}}",
             "got: %!t(float64=12), expected: string or interface");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Env':{'A':[]}}}}}",
             "json: cannot unmarshal array into Go value of type struct { Data string; Encoding "
             "string; NoTemplates bool }");
    dec_fail("{'Marbles':{'m':{'Parameters':{'Env':{'A':{'Data':1}}}}}}",
             "json: cannot unmarshal number into Go struct field .Data of type string");
}

/* ---- decoder: secrets and certificates ---- */

static void test_decode_secrets(void **state)
{
    (void)state;
    mr_manifest *m = dec_ok(
        "{'Secrets':{'c':{'Type':'cert-ecdsa','Size':256,'Shared':true,'ValidFor':3,"
        "'Cert':{'Subject':{'CommonName':'cn','Organization':['o'],'ExtraNames':[{'Type':[2,5,4,"
        "3],'Value':'x'}]},'NotAfter':'2030-01-02T03:04:05.5+01:00','KeyUsage':33,"
        "'ExtKeyUsage':[1,2],'IsCA':true,'MaxPathLen':-1,'DNSNames':['a','b'],'IPAddresses':["
        "'127.0.0.1','::1',''],'SubjectKeyId':'AQI=','ExtraExtensions':[{'Id':[1,2,3],"
        "'Critical':true,'Value':'AA=='}],'PolicyIdentifiers':[[1,2],[3]]}},"
        "'k':{'Type':'symmetric-key','Size':128,'UserDefined':true,'Private':'AQ==','Public':null}}}");
    const mr_manifest_secret *c = mr_manifest_find_secret(m, "c");
    assert_string_equal(c->cert.subject.common_name.ptr, "cn");
    assert_string_equal(c->cert.subject.organization.items[0].ptr, "o");
    assert_int_equal(c->cert.subject.extra_names.count, 1);
    assert_int_equal(c->cert.subject.extra_names.items[0].type.count, 4);
    assert_true(c->cert.not_after.set);
    assert_int_equal(c->cert.not_after.unix_sec, 1893549845); /* 02:04:05Z */
    assert_int_equal(c->cert.not_after.nsec, 500000000);
    assert_int_equal(c->cert.key_usage, 33);
    assert_int_equal(c->cert.ext_key_usage.count, 2);
    assert_true(c->cert.is_ca);
    assert_int_equal(c->cert.max_path_len, -1);
    assert_int_equal(c->cert.ip_addresses.count, 3);
    assert_int_equal(c->cert.ip_addresses.items[0].len, 4);
    assert_int_equal(c->cert.ip_addresses.items[1].len, 16);
    assert_int_equal(c->cert.ip_addresses.items[2].len, 0);
    assert_int_equal(c->cert.subject_key_id.len, 2);
    assert_int_equal(c->cert.extra_extensions.count, 1);
    assert_true(c->cert.extra_extensions.items[0].critical);
    assert_int_equal(c->cert.policy_identifiers.count, 2);
    const mr_manifest_secret *k = mr_manifest_find_secret(m, "k");
    assert_int_equal(k->private_key.len, 1);
    assert_false(k->public_key.present);
    mr_manifest_free(m);

    /* the zero time counts as unset */
    m = dec_ok("{'Secrets':{'c':{'Cert':{'NotAfter':'0001-01-01T00:00:00Z'}}}}");
    assert_false(m->secrets.items[0].cert.not_after.set);
    mr_manifest_free(m);

    static const struct {
        const char *in, *err;
    } times[] = {
        {"2030-13-01T00:00:00Z", "parsing time \"2030-13-01T00:00:00Z\": month out of range"},
        {"2030-02-30T00:00:00Z", "parsing time \"2030-02-30T00:00:00Z\": day out of range"},
        {"2030-01-01T24:00:00Z", "parsing time \"2030-01-01T24:00:00Z\": hour out of range"},
        {"2030-01-01T00:00:60Z", "parsing time \"2030-01-01T00:00:60Z\": second out of range"},
        {"2030/01/01T00:00:00Z", "parsing time \"2030/01/01T00:00:00Z\" as "
                                 "\"2006-01-02T15:04:05Z07:00\": cannot parse \"/01/01T00:00:00Z\" "
                                 "as \"-\""},
        {"2030-01-01", "parsing time \"2030-01-01\" as \"2006-01-02T15:04:05Z07:00\": cannot "
                       "parse \"\" as \"T\""},
        {"2030-01-01T00:00:00", "parsing time \"2030-01-01T00:00:00\" as "
                                "\"2006-01-02T15:04:05Z07:00\": cannot parse \"\" as \"Z07:00\""},
        {"2030-01-01T00:00:00Zjunk", "parsing time \"2030-01-01T00:00:00Zjunk\": extra text: "
                                     "\"junk\""},
        {"2030-01-01T1:00:00Z", "parsing time \"2030-01-01T1:00:00Z\" as "
                                "\"2006-01-02T15:04:05Z07:00\": cannot parse \"1\" as \"15\""},
        {"2030-01-01T00:00:00,5Z", "parsing time \"2030-01-01T00:00:00,5Z\" as "
                                   "\"2006-01-02T15:04:05Z07:00\": cannot parse \",\" as \".\""},
        {"2030-01-01T00:00:00+24:00",
         "parsing time \"2030-01-01T00:00:00+24:00\": timezone hour out of range"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(times); i++) {
        char json[160];
        snprintf(json, sizeof(json), "{'Secrets':{'c':{'Cert':{'NotAfter':'%s'}}}}", times[i].in);
        dec_fail(json, times[i].err);
    }
    dec_fail("{'Secrets':{'c':{'Cert':{'NotAfter':5}}}}",
             "Time.UnmarshalJSON: input is not a JSON string");
    dec_fail("{'Secrets':{'c':{'Cert':{'IPAddresses':['1.2.3']}}}}",
             "invalid IP address: 1.2.3");
    dec_fail("{'Secrets':{'c':{'Cert':{'KeyUsage':'x'}}}}",
             "json: cannot unmarshal string into Go struct field Certificate.KeyUsage of type "
             "x509.KeyUsage");
    dec_fail("{'Secrets':{'c':{'Cert':{'Subject':{'CommonName':1}}}}}",
             "json: cannot unmarshal number into Go struct field Name.Subject.CommonName of type "
             "string");
    dec_fail("{'Secrets':{'c':{'Cert':{'Version':'3'}}}}",
             "json: cannot unmarshal string into Go struct field Certificate.Version of type int");
    dec_fail("{'Secrets':{'c':{'Cert':{'Issuer':{'Country':'DE'}}}}}",
             "json: cannot unmarshal string into Go struct field Name.Issuer.Country of type "
             "[]string");
    dec_fail("{'Secrets':{'c':{'Cert':{'BasicConstraintsValid':1,'Signature':'AA=','Issuer':5}}}}",
             "json: cannot unmarshal number into Go struct field Certificate."
             "BasicConstraintsValid of type bool");
    dec_fail("{'Secrets':{'c':{'Cert':{'ExtraExtensions':[{'Id':'1.2'}]}}}}",
             "json: cannot unmarshal string into Go struct field Extension.ExtraExtensions.Id of "
             "type asn1.ObjectIdentifier");
    dec_fail("{'Secrets':{'c':{'Cert':{'Subject':{'ExtraNames':[{'Type':[1,'x']}]}}}}}",
             "json: cannot unmarshal string into Go struct field AttributeTypeAndValue.Subject."
             "ExtraNames.Type of type int");
    dec_fail("{'Secrets':{'c':{'Cert':{'ExtKeyUsage':[1.5]}}}}",
             "json: cannot unmarshal number 1.5 into Go struct field Certificate.ExtKeyUsage of "
             "type x509.ExtKeyUsage");
    dec_fail("{'Secrets':{'c':{'Cert':5}}}",
             "json: cannot unmarshal number into Go value of type x509.Certificate");
    /* a base64 string must be a DER certificate; non-base64 strings are ignored */
    dec_fail("{'Secrets':{'c':{'Cert':'AAAA'}}}", "x509: malformed certificate");
    m = dec_ok("{'Secrets':{'c':{'Cert':'not base64!'}}}");
    assert_false(m->secrets.items[0].cert.raw.present);
    mr_manifest_free(m);
}

static void test_decode_fingerprint(void **state)
{
    (void)state;
    mr_manifest *m = dec_ok("{}");
    assert_string_equal(m->fingerprint,
                        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    mr_manifest_free(m);
    m = dec_ok("{ }");
    assert_string_not_equal(m->fingerprint,
                            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    assert_int_equal(m->raw.len, 3);
    assert_memory_equal(m->raw.ptr, "{ }", 3);
    mr_manifest_free(m);
    char fp[65];
    MR_ASSERT_OK(mr_manifest_fingerprint((const uint8_t *)"", 0, fp));
    assert_string_equal(fp, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    mr_manifest_free(NULL);

    char big[64];
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[63] = '}';
    MR_ASSERT_FAIL(mr_manifest_decode((const uint8_t *)big, MR_MANIFEST_MAX_SIZE + 1, &m),
                   MR_ERR_USAGE, "too large");
}

/* ---- encoder golden outputs ---- */

static void test_encode_golden(void **state)
{
    (void)state;
    mr_manifest *m = dec_ok("{'Secrets':{'s':{'Type':'plain','Private':'AQID','Public':''},"
                            "'t':{'Type':'symmetric-key','Size':128,'Shared':true,"
                            "'UserDefined':true,'ValidFor':7}}}");
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_manifest_encode_secret(&m->secrets.items[0], &b));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    assert_string_equal((char *)b.data,
                        "{\"Type\":\"plain\",\"Size\":0,\"Shared\":false,\"UserDefined\":false,"
                        "\"Cert\":null,\"ValidFor\":0,\"Private\":\"AQID\",\"Public\":\"\"}");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_manifest_encode_secret(&m->secrets.items[1], &b));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    assert_string_equal((char *)b.data,
                        "{\"Type\":\"symmetric-key\",\"Size\":128,\"Shared\":true,"
                        "\"UserDefined\":true,\"Cert\":null,\"ValidFor\":7,\"Private\":null,"
                        "\"Public\":null}");
    /* raw invalid UTF-8 (possible in decoded File data) becomes \ufffd */
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_manifest_json_string("a\xff\xc3(\xed\xa0\x80z\xf0\x9f\x98\x80", 12, &b));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    assert_string_equal((char *)b.data,
                        "\"a\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffdz\xf0\x9f\x98\x80\"");
    mr_buf_free(&b);
    mr_manifest_free(m);
}

/* ---- consistency check: one accepting and one rejecting case per rule ---- */

typedef struct check_case {
    const char *json;
    const char *err; /* NULL: accepted */
} check_case;

static const check_case check_cases[] = {
    /* 1. packages and marbles */
    {"{" BASE "}", NULL},
    {"{" BASE_M "}", "no allowed packages defined"},
    {"{'Packages':{}," BASE_M "}", "no allowed packages defined"},
    {"{" BASE_P "}", "no allowed marbles defined"},
    /* 2. marble → package, identity rules (only for referenced packages) */
    {"{" BASE_P ",'Marbles':{'m':{'Package':'q'}}}", "manifest does not contain marble package q"},
    {"{'Packages':{'p':{'UniqueID':'a','SignerID':'b'}}," BASE_M "}",
     "manifest specifies both UniqueID *and* SignerID/ProductID/SecurityVersion in package p"},
    {"{'Packages':{'p':{'UniqueID':'a','ProductID':0}}," BASE_M "}",
     "manifest specifies both UniqueID *and* SignerID/ProductID/SecurityVersion in package p"},
    {"{'Packages':{'p':{'UniqueID':'a','SecurityVersion':0,'Debug':true}}," BASE_M "}", NULL},
    {"{'Packages':{'p':{'ProductID':1,'SecurityVersion':1}}," BASE_M "}",
     "manifest misses value for SignerID in package p"},
    {"{'Packages':{'p':{'SignerID':'s','SecurityVersion':1}}," BASE_M "}",
     "manifest misses value for ProductID in package p"},
    {"{'Packages':{'p':{'SignerID':'s','ProductID':0}}," BASE_M "}",
     "manifest misses value for SecurityVersion in package p"},
    {"{'Packages':{'p':{'SignerID':'s','ProductID':0,'SecurityVersion':0}}," BASE_M "}", NULL},
    {"{'Packages':{'p':{'Debug':true}}," BASE_M "}", NULL},
    {"{'Packages':{'p':{'UniqueID':'a'},'unused':{}}," BASE_M "}", NULL},
    {"{" BASE_P ",'Marbles':{'m':{'Package':'p','TLS':['t']}}}", "manifest misses TLS entry for t"},
    {"{" BASE_P ",'Marbles':{'m':{'Package':'p','TLS':['t']}},'TLS':{'t':{}}}", NULL},
    /* 3. TLS tags */
    {"{" BASE ",'TLS':{'t':{'Incoming':[{'Port':''}]}}}", "manifest misses Port in TLS.Incoming.t"},
    {"{" BASE ",'TLS':{'t':{'Incoming':[{'Port':'1','Cert':'s','DisableClientAuth':true}]}}}",
     "TLS.Incoming.t references undefined secret s"},
    {"{" BASE ",'Secrets':{'s':{'Type':'cert-ecdsa'}},'TLS':{'t':{'Incoming':[{'Port':'1',"
     "'Cert':'s'}]}}}",
     "TLS.Incoming.t defines Cert but does not disable client authentication"},
    {"{" BASE ",'Secrets':{'s':{'Type':'plain'}},'TLS':{'t':{'Incoming':[{'Port':'1',"
     "'Cert':'s','DisableClientAuth':true}]}}}",
     NULL},
    {"{" BASE ",'TLS':{'t':{'Incoming':[{'Port':'1','DisableClientAuth':true}]}}}",
     "TLS.Incoming.t disables client authentication"},
    {"{" BASE ",'TLS':{'t':{'Outgoing':[{'Port':'1'}]}}}", "manifest misses Addr in TLS.Outgoing.t"},
    {"{" BASE ",'TLS':{'t':{'Outgoing':[{'Addr':'a'}]}}}", "manifest misses Port in TLS.Outgoing.t"},
    {"{" BASE ",'TLS':{'t':{'Outgoing':[{'Addr':'a','Port':'1'}],'Incoming':[{'Port':'2'}]}}}", NULL},
    /* 4. users */
    {"{" BASE ",'Users':{'u':{'Certificate':''}}}",
     "manifest does not contain a certificate for user u"},
    {"{" BASE ",'Users':{'u':{'Certificate':'c','Roles':['r']}}}",
     "manifest specifies role r for user u, but role does not exist"},
    {"{" BASE ",'Users':{'a':{'Certificate':'c'},'b':{'Certificate':'c'}}}",
     "manifest contains the same certificate for users b and a"},
    {"{" BASE ",'Users':{'a':{'Certificate':'c'},'b':{'Certificate':'c '}}}", NULL},
    /* 5. roles */
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Packages','ResourceNames':['x']}}}",
     "role r: resource x of type Packages is not defined in manifest"},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Packages','ResourceNames':['p'],'Actions':['Read']}}}",
     "unknown action: Read for type Packages in role: r"},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Packages','ResourceNames':['p'],"
     "'Actions':['UPDATESECURITYVERSION']}}}",
     NULL},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Secrets','Actions':['Delete']}}}",
     "unknown action: Delete for type Secrets in role: r"},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Secrets','ResourceNames':['s'],'Actions':['ReadSecret']}}}",
     "role r: resource s of type Secrets is not defined in manifest"},
    {"{" BASE ",'Secrets':{'s':{'Type':'plain','Shared':true}},'Roles':{'r':{'ResourceType':"
     "'Secrets','ResourceNames':['s'],'Actions':['writesecret']}}}",
     "manifest specifies write permission for role r and secret s, but secret is not user-defined"},
    {"{" BASE ",'Secrets':{'s':{'Type':'symmetric-key'}},'Roles':{'r':{'ResourceType':"
     "'Secrets','ResourceNames':['s'],'Actions':['ReadSecret']}}}",
     "manifest specifies read permission for role r and per-marble-unique secret s"},
    {"{" BASE ",'Secrets':{'s':{'Type':'plain','UserDefined':true},'t':{'Type':'symmetric-key',"
     "'Shared':true}},'Roles':{'r':{'ResourceType':'Secrets','ResourceNames':['s'],'Actions':["
     "'ReadSecret','WriteSecret']},'q':{'ResourceType':'Secrets','ResourceNames':['t'],"
     "'Actions':['READSECRET']}}}",
     NULL},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Manifest','ResourceNames':['x'],"
     "'Actions':['UpdateManifest']}}}",
     "role r: resource names are not allowed for type Manifest"},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Manifest','Actions':['Update']}}}",
     "unknown action: Update for type Manifest in role: r"},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'Manifest','Actions':['updatemanifest']}}}", NULL},
    {"{" BASE ",'Roles':{'r':{'ResourceType':'packages','ResourceNames':['p','q'],"
     "'Actions':['a']}}}",
     "unrecognized resource type: {packages [p q] [a]} for role: r"},
    {"{" BASE ",'Roles':{'r':{}}}", "unrecognized resource type: { [] []} for role: r"},
    /* 6. secrets */
    {"{" BASE ",'Secrets':{'s':{'Type':'cert-rsa','ValidFor':1,'Cert':{'NotAfter':"
     "'2030-01-01T00:00:00Z'}}}}",
     "ambiguous certificate validity duration for secret: s, both NotAfter and ValidFor are "
     "specified"},
    {"{" BASE ",'Secrets':{'s':{'Type':'cert-ed25519','ValidFor':1},'t':{'Type':'cert-ecdsa',"
     "'Cert':{'NotAfter':'2030-01-01T00:00:00Z'}}}}",
     NULL},
    {"{" BASE ",'Secrets':{'s':{'Type':'Symmetric-Key'}}}",
     "unknown type: Symmetric-Key for secret: s"},
    {"{" BASE ",'Secrets':{'s':{}}}", "unknown type:  for secret: s"},
    /* plain without UserDefined and bad sizes pass the check (they fail at generation) */
    {"{" BASE ",'Secrets':{'s':{'Type':'plain'},'k':{'Type':'symmetric-key','Size':3}}}", NULL},
    /* §12.2 Config */
    {"{" BASE ",'Config':{'UpdateThreshold':1}}",
     "not enough users with manifest update permissions (0) to meet the threshold of 1"},
    {"{" BASE ",'Users':{'a':{'Certificate':'1','Roles':['u','v']},'b':{'Certificate':'2',"
     "'Roles':['v']}},'Roles':{'u':{'ResourceType':'Manifest','Actions':['UpdateManifest']},"
     "'v':{'ResourceType':'Manifest','Actions':['UpdateManifest']}},'Config':{'UpdateThreshold':2}}",
     NULL},
    {"{" BASE ",'Users':{'a':{'Certificate':'1','Roles':['u','v']}},'Roles':{'u':{'ResourceType':"
     "'Manifest','Actions':['UpdateManifest']},'v':{'ResourceType':'Manifest','Actions':["
     "'UpdateManifest']}},'Config':{'UpdateThreshold':2}}",
     "not enough users with manifest update permissions (1) to meet the threshold of 2"},
    {"{" BASE ",'Config':{'SealMode':'uniquekey'}}", "unknown seal mode: uniquekey"},
    {"{" BASE ",'Config':{'SealMode':'Disabled'}}", NULL},
    {"{" BASE ",'Config':{'FeatureGates':['SignQuote']}}", "unknown feature gate: SignQuote"},
    {"{" BASE ",'Config':{'FeatureGates':['signquoteendpoint','MONOTONICCOUNTER',"
     "'AzureHSMSealing']}}",
     NULL},
    {"{" BASE ",'Config':{'RecoveryThreshold':2}}",
     "not enough recovery keys (0) defined to meet the recovery threshold of 2"},
    {"{" BASE ",'RecoveryKeys':{'a':'x'},'Config':{'RecoveryThreshold':1}}",
     "invalid recovery threshold: if set, threshold must be at least 2"},
    {"{" BASE ",'RecoveryKeys':{'a':'x','b':'y'},'Config':{'RecoveryThreshold':2}}", NULL},
    /* ordering: marbles (sorted) before TLS, TLS before users, ... */
    {"{" BASE_P ",'Marbles':{'a':{'Package':'p','TLS':['x']},'b':{'Package':'zz'}},"
     "'Config':{'SealMode':'?'}}",
     "manifest misses TLS entry for x"},
    {"{" BASE ",'TLS':{'t':{'Outgoing':[{}]}},'Users':{'u':{}}}",
     "manifest misses Addr in TLS.Outgoing.t"},
    {"{" BASE ",'Users':{'u':{}},'Roles':{'r':{}}}",
     "manifest does not contain a certificate for user u"},
    {"{" BASE ",'Roles':{'r':{}},'Secrets':{'s':{}}}",
     "unrecognized resource type: { [] []} for role: r"},
    {"{" BASE ",'Secrets':{'s':{}},'Config':{'SealMode':'?'}}", "unknown type:  for secret: s"},
    {"{" BASE ",'Config':{'SealMode':'?','FeatureGates':['?'],'UpdateThreshold':1}}",
     "not enough users with manifest update permissions (0) to meet the threshold of 1"},
    {"{" BASE ",'Config':{'SealMode':'?','FeatureGates':['?'],'RecoveryThreshold':1}}",
     "unknown seal mode: ?"},
    {"{" BASE ",'Config':{'FeatureGates':['?'],'RecoveryThreshold':1}}", "unknown feature gate: ?"},
};

static void test_check_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < MR_ARRAY_LEN(check_cases); i++) {
        const check_case *tc = &check_cases[i];
        mr_manifest *m = NULL;
        mr_result r = decode_sq(tc->json, &m);
        if (!mr_ok(r))
            fail_msg("case %zu: decode failed: %s", i, mr_error_get()->msg);
        mr_error_clear();
        r = mr_manifest_check(m, NULL);
        if (tc->err == NULL && !mr_ok(r))
            fail_msg("case %zu: unexpected error \"%s\"", i, mr_error_get()->msg);
        if (tc->err != NULL) {
            if (mr_ok(r))
                fail_msg("case %zu: accepted, want \"%s\"", i, tc->err);
            if (strcmp(mr_error_get()->msg, tc->err) != 0)
                fail_msg("case %zu: got \"%s\"\n  want \"%s\"", i, mr_error_get()->msg, tc->err);
            assert_int_equal(mr_error_get()->cat, MR_ERR_USAGE);
        }
        mr_manifest_free(m);
    }
}

/* Debug packages turn identity errors into warnings on the log. */
static void test_check_debug_warnings(void **state)
{
    (void)state;
    char path[] = "/tmp/mr-manifest-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    mr_log_set_fd(fd);
    mr_manifest *m = dec_ok("{'Packages':{'p':{'Debug':true,'UniqueID':'u','ProductID':1},"
                            "'q':{'Debug':true}},'Marbles':{'a':{'Package':'p'},'b':{'Package':'q'}}}");
    MR_ASSERT_OK(mr_manifest_check(m, NULL));
    mr_manifest_free(m);
    int null_fd = open("/dev/null", O_WRONLY);
    mr_log_set_fd(null_fd);
    char buf[4096] = {0};
    assert_true(lseek(fd, 0, SEEK_SET) == 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "\"level\":\"warn\""));
    assert_non_null(strstr(buf, "UniqueID *and* SignerID/ProductID/SecurityVersion"));
    assert_non_null(strstr(buf, "\"packageName\":\"p\""));
    assert_non_null(strstr(buf, "\"field\":\"SecurityVersion\",\"packageName\":\"q\""));
}

static void test_check_hsm_env(void **state)
{
    (void)state;
    mr_manifest *m = dec_ok("{" BASE ",'Config':{'FeatureGates':['azurehsmsealing']}}");
    mr_manifest_check_opts opts = {.missing_hsm_env = "[EDG_AZURE_HSM_KEY_NAME]"};
    ASSERT_FAIL_EXACT(mr_manifest_check(m, &opts),
                      "manifest enables sealing with Azure HSM key, but required environment "
                      "variables are not set: [EDG_AZURE_HSM_KEY_NAME]");
    opts.missing_hsm_env = NULL;
    MR_ASSERT_OK(mr_manifest_check(m, &opts));
    assert_true(mr_manifest_feature_enabled(m, "AzureHSMSealing"));
    assert_false(mr_manifest_feature_enabled(m, "MonotonicCounter"));
    mr_manifest_free(m);

    /* full update wraps the reason */
    m = dec_ok("{" BASE_P "}");
    ASSERT_FAIL_EXACT(mr_manifest_check_full_update(m, NULL),
                      "invalid manifest: no allowed marbles defined");
    mr_manifest_free(m);
}

/* ---- fixtures ---- */

/* Every <name>.json in tests/fixtures/manifests/<sub> must decode, pass the consistency check
 * (and with dry_run fail the template dry run), or fail with exactly the text in <name>.err. */
static size_t run_invalid_dir(const char *sub, bool dry_run)
{
    const char *src = getenv("MR_SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/tests/fixtures/manifests/%s", src ? src : ".", sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char rel[512], errrel[512];
        snprintf(rel, sizeof(rel), "tests/fixtures/manifests/%s/%s", sub, e->d_name);
        snprintf(errrel, sizeof(errrel), "tests/fixtures/manifests/%s/%.*s.err", sub, (int)(n - 5),
                 e->d_name);
        size_t jl, el;
        char *json = read_file(rel, &jl);
        char *want = read_file(errrel, &el);
        while (el > 0 && want[el - 1] == '\n')
            want[--el] = '\0';
        mr_manifest *m = NULL;
        mr_error_clear();
        mr_result r = mr_manifest_decode((const uint8_t *)json, jl, &m);
        if (mr_ok(r))
            r = mr_manifest_check(m, NULL);
        if (mr_ok(r) && dry_run)
            r = mr_manifest_dry_run(m, NULL);
        if (mr_ok(r))
            fail_msg("%s/%s: accepted, want \"%s\"", sub, e->d_name, want);
        if (strcmp(mr_error_get()->msg, want) != 0)
            fail_msg("%s/%s: got \"%s\", want \"%s\"", sub, e->d_name, mr_error_get()->msg, want);
        mr_manifest_free(m);
        mr_free(json);
        mr_free(want);
        seen++;
    }
    closedir(d);
    return seen;
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *good[] = {"minimal.json", "full.json", "tls.json", "templates.json",
                          "multiparty.json"};
    for (size_t i = 0; i < MR_ARRAY_LEN(good); i++) {
        mr_manifest *m = load_fixture(good[i]);
        mr_error_clear();
        if (!mr_ok(mr_manifest_check(m, NULL)) || !mr_ok(mr_manifest_check_user_certs(m)) ||
            !mr_ok(mr_manifest_check_recovery_keys(m)))
            fail_msg("%s: %s", good[i], mr_error_get()->msg);
        mr_manifest_free(m);
    }

    assert_true(run_invalid_dir("invalid", false) >= 10);
    assert_true(run_invalid_dir("dryrun-invalid", true) >= 5);
}

/* ---- user certificates and recovery keys ---- */

static char *pem_json(const char *file)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "tests/fixtures/manifests/pem/%s", file);
    size_t len;
    char *pem = read_file(rel, &len);
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_manifest_json_string(pem, len, &b));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    mr_free(pem);
    size_t n;
    return (char *)mr_buf_steal(&b, &n);
}

/* prefix + quoted PEM + suffix */
static mr_manifest *with_pem(const char *prefix, const char *file, const char *suffix)
{
    char *p = pem_json(file);
    char json[8192];
    snprintf(json, sizeof(json), "%s%s%s", prefix, p, suffix);
    mr_free(p);
    mr_manifest *m = NULL;
    MR_ASSERT_OK(mr_manifest_decode((const uint8_t *)json, strlen(json), &m));
    return m;
}

static void test_pki_checks(void **state)
{
    (void)state;
#define RK "{\"RecoveryKeys\":{\"k\":"
    mr_manifest *m = with_pem(RK, "rec.pub", "}}");
    MR_ASSERT_OK(mr_manifest_check_recovery_keys(m));
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_ASSERT_OK(mr_manifest_recovery_key_der(&m->recovery_keys.items[0], &der));
    assert_true(der.len > 256);
    mr_buf_free(&der);
    mr_manifest_free(m);

    m = with_pem(RK, "rec.pkcs1", "}}");
    ASSERT_FAIL_EXACT(mr_manifest_check_recovery_keys(m), "given PEM data is not a public key");
    mr_manifest_free(m);
    m = with_pem(RK, "ec.pub", "}}");
    ASSERT_FAIL_EXACT(mr_manifest_check_recovery_keys(m), "unsupported type of public key");
    mr_manifest_free(m);
    m = with_pem(RK, "admin.crt", "}}");
    ASSERT_FAIL_EXACT(mr_manifest_check_recovery_keys(m), "given PEM data is not a public key");
    mr_manifest_free(m);
    m = dec_ok("{'RecoveryKeys':{'k':'-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n'}}");
    ASSERT_FAIL_EXACT(mr_manifest_check_recovery_keys(m), "x509: failed to parse public key");
    mr_manifest_free(m);

#define US "{\"Users\":{\"u\":{\"Certificate\":"
    m = with_pem(US, "admin.crt", "}}}");
    MR_ASSERT_OK(mr_manifest_check_user_certs(m));
    mr_buf_init(&der, 0, 0);
    MR_ASSERT_OK(mr_manifest_user_cert_der(&m->users.items[0], &der));
    assert_int_equal(der.data[0], 0x30);
    mr_buf_free(&der);
    mr_manifest_free(m);
    m = with_pem(US, "rec.pub", "}}}");
    ASSERT_FAIL_EXACT(mr_manifest_check_user_certs(m), "x509: malformed certificate");
    mr_manifest_free(m);
    m = dec_ok("{'Users':{'u':{'Certificate':'no pem here'}}}");
    ASSERT_FAIL_EXACT(mr_manifest_check_user_certs(m), "received invalid certificate for user u");
    mr_manifest_free(m);
}

/* ---- permissions ---- */

static void test_permissions(void **state)
{
    (void)state;
    mr_manifest *m = load_fixture("full.json");
    const char *one[] = {"userKey"};
    const char *two[] = {"userKey", "apiKey"};
    const char *bad[] = {"userKey", "certShared"};
    assert_true(mr_manifest_user_permitted(m, "admin", MR_PERM_WRITE_SECRET, one, 1));
    assert_true(mr_manifest_user_permitted(m, "admin", MR_PERM_READ_SECRET, two, 2));
    assert_false(mr_manifest_user_permitted(m, "admin", MR_PERM_READ_SECRET, bad, 2));
    assert_true(mr_manifest_user_permitted(m, "admin", MR_PERM_UPDATE_MANIFEST, NULL, 0));
    const char *pk[] = {"backend", "frontend"};
    assert_true(mr_manifest_user_permitted(m, "admin", MR_PERM_UPDATE_PACKAGE, pk, 2));
    assert_false(mr_manifest_user_permitted(m, "alice", MR_PERM_UPDATE_PACKAGE, pk, 1));
    const char *sh[] = {"symmetricKeyShared", "certShared"};
    assert_true(mr_manifest_user_permitted(m, "alice", MR_PERM_READ_SECRET, sh, 2));
    assert_false(mr_manifest_user_permitted(m, "alice", MR_PERM_WRITE_SECRET, sh, 1));
    assert_false(mr_manifest_user_permitted(m, "mallory", MR_PERM_READ_SECRET, NULL, 0));
    assert_false(mr_manifest_user_permitted(m, "alice", MR_PERM_UPDATE_MANIFEST, NULL, 0));

    const mr_manifest_user **users = NULL;
    size_t n = 0;
    MR_ASSERT_OK(mr_manifest_update_users(m, &users, &n));
    assert_int_equal(n, 1);
    assert_string_equal(users[0]->name.ptr, "admin");
    mr_free(users);
    assert_int_equal(mr_manifest_required_acks(m), 1);
    mr_manifest_free(m);

    /* resource sets of several roles granting the same permission are merged */
    m = dec_ok("{'Users':{'u':{'Certificate':'c','Roles':['a','b']}},'Roles':{'a':{'ResourceType':"
               "'Secrets','ResourceNames':['x'],'Actions':['ReadSecret']},'b':{'ResourceType':"
               "'Secrets','ResourceNames':['y'],'Actions':['readsecret','WriteSecret']}}}");
    const char *xy[] = {"x", "y"};
    assert_true(mr_manifest_user_permitted(m, "u", MR_PERM_READ_SECRET, xy, 2));
    assert_false(mr_manifest_user_permitted(m, "u", MR_PERM_WRITE_SECRET, xy, 2));
    assert_int_equal(mr_manifest_required_acks(m), 0);
    MR_ASSERT_OK(mr_manifest_update_users(m, &users, &n));
    assert_int_equal(n, 0);
    assert_null(users);

    mr_manifest_free(m);

    m = load_fixture("multiparty.json");
    assert_int_equal(mr_manifest_required_acks(m), 2);
    assert_true(mr_manifest_feature_enabled(m, "SignQuoteEndpoint"));
    mr_manifest_free(m);
}

/* ---- package updates (§8.3) and full updates (§12.7) ---- */

static void test_package_update(void **state)
{
    (void)state;
    mr_manifest *cur = load_fixture("full.json"); /* backend SVN 1, frontend SVN 3 */
    static const struct {
        const char *json;
        const char *err;
    } cases[] = {
        {"{'Packages':{'backend':{'SecurityVersion':5}}}", NULL},
        {"{'Packages':{'backend':{'SecurityVersion':1},'frontend':{'SecurityVersion':3}}}", NULL},
        {"{}", "no packages defined"},
        {"{'Packages':{}}", "no packages defined"},
        {"{'Packages':{'nope':{'SecurityVersion':5}}}",
         "update manifest specifies a package which the original manifest does not contain"},
        {"{'Packages':{'backend':{'SecurityVersion':5,'Debug':true}}}",
         "update manifest contains unupdatable values"},
        {"{'Packages':{'backend':{'SecurityVersion':5,'UniqueID':'a'}}}",
         "update manifest contains unupdatable values"},
        {"{'Packages':{'backend':{'SecurityVersion':5,'SignerID':'a'}}}",
         "update manifest contains unupdatable values"},
        {"{'Packages':{'backend':{'SecurityVersion':5,'ProductID':43}}}",
         "update manifest contains unupdatable values"},
        {"{'Packages':{'backend':{}}}", "update manifest does not specify a SecurityVersion to update"},
        {"{'Packages':{'frontend':{'SecurityVersion':2}}}",
         "update manifest tries to downgrade SecurityVersion of the original manifest"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        mr_manifest *u = dec_ok(cases[i].json);
        assert_true(mr_manifest_is_package_update(u));
        mr_error_clear();
        mr_result r = mr_manifest_check_package_update(u, cur);
        if (cases[i].err == NULL && !mr_ok(r))
            fail_msg("case %zu: %s", i, mr_error_get()->msg);
        if (cases[i].err != NULL) {
            if (mr_ok(r))
                fail_msg("case %zu accepted", i);
            assert_string_equal(mr_error_get()->msg, cases[i].err);
        }
        mr_manifest_free(u);
    }

    /* unset SVN in the current package: anything goes */
    mr_manifest *nosvn = dec_ok("{'Packages':{'p':{'UniqueID':'x'}}}");
    mr_manifest *u = dec_ok("{'Packages':{'p':{'SecurityVersion':0}},'Config':{}}");
    MR_ASSERT_OK(mr_manifest_check_package_update(u, nosvn));
    mr_manifest_free(u);
    mr_manifest_free(nosvn);

    /* any other section makes it a full update */
    u = dec_ok("{'Packages':{'a':{}},'Marbles':{}}");
    assert_true(mr_manifest_is_package_update(u)); /* empty maps do not count */
    mr_manifest_free(u);
    u = dec_ok("{'Packages':{'a':{}},'Roles':{'r':{}}}");
    assert_false(mr_manifest_is_package_update(u));
    mr_manifest_free(u);
    mr_manifest_free(cur);
}

/* ---- comparisons for full updates ---- */

static void test_equality(void **state)
{
    (void)state;
    mr_manifest *a = dec_ok("{'Secrets':{'s':{'Type':'plain','Size':1,'Private':'AQ=='}},"
                            "'RecoveryKeys':{'k':'K'}}");
    mr_manifest *b = dec_ok("{'Secrets':{'s':{'Type':'plain','Size':1}},"
                            "'RecoveryKeys':{'k':'K'},'Config':{'RecoveryThreshold':1}}");
    assert_true(mr_manifest_secret_definition_equal(&a->secrets.items[0], &b->secrets.items[0]));
    assert_false(mr_manifest_recovery_changed(a, b)); /* threshold 1 == 0 with one key */
    b->secrets.items[0].size = 2;
    assert_false(mr_manifest_secret_definition_equal(&a->secrets.items[0], &b->secrets.items[0]));
    b->secrets.items[0].size = 1;
    b->secrets.items[0].shared = true;
    assert_false(mr_manifest_secret_definition_equal(&a->secrets.items[0], &b->secrets.items[0]));
    b->config.recovery_threshold = 2;
    assert_true(mr_manifest_recovery_changed(a, b));
    b->config.recovery_threshold = 0;
    b->recovery_keys.items[0].pem.ptr[0] = 'L';
    assert_true(mr_manifest_recovery_changed(a, b));
    mr_manifest_free(a);
    mr_manifest_free(b);
}

/* ---- template dry run ---- */

typedef struct seen_tpl {
    int files, envs;
    const char *fail_on;
} seen_tpl;

static mr_result record_tpl(void *ctx, mr_manifest_tpl_kind kind, const char *text, size_t len)
{
    seen_tpl *s = ctx;
    if (kind == MR_MANIFEST_TPL_FILE)
        s->files++;
    else
        s->envs++;
    if (s->fail_on && strlen(s->fail_on) == len && memcmp(text, s->fail_on, len) == 0)
        MR_BAIL(MR_ERR_USAGE, "engine says no");
    return MR_SUCCESS;
}

static void test_dry_run_walk(void **state)
{
    (void)state;
    mr_manifest *m = load_fixture("full.json");
    seen_tpl s = {0};
    MR_ASSERT_OK(mr_manifest_template_dry_run(m, record_tpl, &s));
    assert_int_equal(s.files, 5); /* the NoTemplates hex file is skipped */
    assert_int_equal(s.envs, 5);  /* 4 + frontend's CERT; LITERAL is NoTemplates */
    s = (seen_tpl){.fail_on = "{{ hex .Secrets.symmetricKeyUnique }}"};
    ASSERT_FAIL_EXACT(mr_manifest_template_dry_run(m, record_tpl, &s),
                      "in Marble backendFirst: env variable SEAL_KEY: engine says no");
    s = (seen_tpl){.fail_on = "{{ pem .Secrets.certShared.Cert }}"};
    ASSERT_FAIL_EXACT(mr_manifest_template_dry_run(m, record_tpl, &s),
                      "in Marble backendFirst: file /tmp/cert.pem: engine says no");
    mr_manifest_free(m);

    /* NUL in env data is rejected even with NoTemplates; files may hold any bytes */
    m = dec_ok("{'Marbles':{'m':{'Parameters':{'Files':{'/f':{'Data':'AA==','Encoding':'base64'}},"
               "'Env':{'E':{'Data':'6100','Encoding':'hex','NoTemplates':true}}}}}}");
    ASSERT_FAIL_EXACT(mr_manifest_template_dry_run(m, NULL, NULL),
                      "in Marble m: env variable: E: content contains null bytes");
    mr_manifest_free(m);
}

static void test_dry_run_engine(void **state)
{
    (void)state;
    const char *fixtures[] = {"minimal.json", "full.json", "tls.json", "templates.json"};
    for (size_t i = 0; i < MR_ARRAY_LEN(fixtures); i++) {
        mr_manifest *m = load_fixture(fixtures[i]);
        mr_error_clear();
        if (!mr_ok(mr_manifest_dry_run(m, NULL)))
            fail_msg("%s: %s", fixtures[i], mr_error_get()->msg);
        mr_manifest_free(m);
    }
    mr_manifest *m = dec_ok("{'Marbles':{'m':{'Parameters':{'Env':{'E':'{{ raw .Secrets.k }}'}}}},"
                            "'Secrets':{'k':{'Type':'symmetric-key','Size':128}}}");
    MR_ASSERT_FAIL(mr_manifest_dry_run(m, NULL), MR_ERR_USAGE, "in Marble m: env variable E: ");
    mr_manifest_free(m);
    m = dec_ok("{'Marbles':{'m':{'Parameters':{'Files':{'/f':'{{ pem .Secrets.missing }}'}}}}}");
    MR_ASSERT_FAIL(mr_manifest_dry_run(m, NULL), MR_ERR_USAGE, "secret does not exist");
    mr_manifest_free(m);
}

/* ---- allocation failures ---- */

static void test_alloc_failures(void **state)
{
    (void)state;
    size_t len;
    char *data = read_file("tests/fixtures/manifests/full.json", &len);
    bool succeeded = false;
    for (long n = 0; n < 100000 && !succeeded; n++) {
        mr_manifest *m = NULL;
        mr_alloc_fail_after(n);
        mr_result r = mr_manifest_decode((const uint8_t *)data, len, &m);
        if (mr_ok(r)) {
            mr_buf b;
            mr_buf_init(&b, 0, 0);
            r = mr_manifest_encode_secret(&m->secrets.items[0], &b);
            if (mr_ok(r))
                r = mr_manifest_check(m, NULL);
            if (mr_ok(r))
                r = mr_manifest_check_user_certs(m);
            if (mr_ok(r))
                r = mr_manifest_check_recovery_keys(m);
            if (mr_ok(r))
                r = mr_manifest_dry_run(m, NULL);
            mr_buf_free(&b);
        }
        mr_alloc_fail_reset();
        if (mr_ok(r))
            succeeded = true;
        else if (mr_error_get()->cat != MR_ERR_INTERNAL)
            fail_msg("allocation %ld failing gave \"%s\" (%s:%d)", n, mr_error_get()->msg,
                     mr_error_get()->file, mr_error_get()->line);
        mr_manifest_free(m);
    }
    assert_true(succeeded);
    mr_free(data);
}

int main(void)
{
    /* identity warnings of Debug packages go to the log; keep the test output readable */
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0)
        mr_log_set_fd(null_fd);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_syntax),
        cmocka_unit_test(test_decode_case_folding),
        cmocka_unit_test(test_decode_duplicates),
        cmocka_unit_test(test_decode_null),
        cmocka_unit_test(test_decode_unsigned),
        cmocka_unit_test(test_decode_types),
        cmocka_unit_test(test_decode_bytes_and_strings),
        cmocka_unit_test(test_decode_files),
        cmocka_unit_test(test_decode_secrets),
        cmocka_unit_test(test_decode_fingerprint),
        cmocka_unit_test(test_encode_golden),
        cmocka_unit_test(test_check_rules),
        cmocka_unit_test(test_check_debug_warnings),
        cmocka_unit_test(test_check_hsm_env),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_pki_checks),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_package_update),
        cmocka_unit_test(test_equality),
        cmocka_unit_test(test_dry_run_walk),
        cmocka_unit_test(test_dry_run_engine),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
