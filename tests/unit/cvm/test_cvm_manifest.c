/* SPDX-License-Identifier: Apache-2.0 */
/* The manifest's Package.TDX and Package.SNP fields (docs/manifest.md): decoding, the
 * consistency check's errors and the conversion into the verifier's rules. */
#include "mr_test.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "manifest/manifest.h"

void cvm_run_manifest_tests(int *failures);

#define H48(x) x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x
#define H32(x) x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x
#define H16(x) x x x x x x x x x x x x x x x x

static const char TDX_PKG[] =
    "\"tdx\":{\"AcceptedTCBStatuses\":[\"UpToDate\"],\"TDX\":{\"MRTD\":\"" H48("11")
    "\",\"RTMR1\":\"" H48("22") "\",\"MRConfigID\":\"" H48("33") "\",\"TDAttributes\":"
    "\"0000001000000000\",\"TDAttributesMask\":\"ffffffff00000000\",\"XFAM\":"
    "\"e71a060000000000\",\"MinTEETCBSVN\":\"04010300000000000000000000000000\"}}";
static const char SNP_PKG[] =
    "\"snp\":{\"SNP\":{\"Measurement\":\"" H48("44") "\",\"HostData\":\"" H32("55")
    "\",\"IDKeyDigest\":\"" H48("66") "\",\"FamilyID\":\"" H16("77") "\",\"ImageID\":\"" H16("88")
    "\",\"Policy\":{\"SMT\":false,\"MigrationAgent\":true,\"SingleSocket\":true},\"VMPL\":1,"
    "\"MinGuestSVN\":9,\"MinimumTCB\":{\"Bootloader\":3,\"TEE\":0,\"SNP\":20,\"Microcode\":209},"
    "\"AcceptedSigningKeys\":[\"VCEK\",\"VLEK\"]}}";

/* A manifest with the packages pkgs (JSON members) and one marble per package name given. */
static mr_result decode_check(const char *pkgs, const char *const *marbles, size_t n,
                              mr_manifest **out)
{
    char buf[8192];
    int len = snprintf(buf, sizeof(buf), "{\"Packages\":{%s},\"Marbles\":{", pkgs);
    for (size_t i = 0; i < n; i++)
        len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%s\"m%zu\":{\"Package\":\"%s\"}",
                        i ? "," : "", i, marbles[i]);
    len += snprintf(buf + len, sizeof(buf) - (size_t)len, "}}");
    assert_true(len > 0 && (size_t)len < sizeof(buf));
    *out = NULL;
    mr_result r = mr_manifest_decode((const uint8_t *)buf, (size_t)len, out);
    if (mr_ok(r))
        r = mr_manifest_check(*out, NULL);
    return r;
}

static void check_fails(const char *pkgs, const char *marble, const char *want)
{
    mr_manifest *m = NULL;
    const char *ms[] = {marble};
    mr_result r = decode_check(pkgs, ms, 1, &m);
    if (mr_ok(r))
        fail_msg("manifest with %s accepted (want \"%s\")", pkgs, want);
    if (strstr(mr_error_get()->msg, want) == NULL)
        fail_msg("got \"%s\", want \"%s\"", mr_error_get()->msg, want);
    assert_int_equal(mr_error_get()->cat, MR_ERR_USAGE);
    mr_manifest_free(m);
}

static void test_decode_and_convert(void **state)
{
    (void)state;
    char pkgs[4096];
    mr_manifest *m = NULL;
    (void)snprintf(pkgs, sizeof(pkgs), "\"sgx\":{\"UniqueID\":\"%s\"},%s,%s",
                   H32("ab"), TDX_PKG, SNP_PKG);
    const char *ms[] = {"sgx", "tdx", "snp"};
    MR_ASSERT_OK(decode_check(pkgs, ms, 3, &m));
    const mr_manifest_package *sgx = mr_manifest_find_package(m, "sgx");
    const mr_manifest_package *tdx = mr_manifest_find_package(m, "tdx");
    const mr_manifest_package *snp = mr_manifest_find_package(m, "snp");
    assert_false(sgx->tdx.present || sgx->snp.present);
    assert_true(tdx->tdx.present && !tdx->snp.present);
    assert_true(snp->snp.present && !snp->tdx.present);

    mr_tdx_package t;
    MR_ASSERT_OK(mr_manifest_tdx_package(tdx, &t));
    assert_true(t.has_mrtd && t.mrtd[0] == 0x11 && t.mrtd[47] == 0x11);
    assert_false(t.has_rtmr[0]);
    assert_true(t.has_rtmr[1] && t.rtmr[1][5] == 0x22);
    assert_true(t.has_mrconfigid && !t.has_mrowner && !t.has_mrownerconfig);
    assert_true(t.has_td_attributes);
    assert_int_equal(t.td_attributes, 1ull << 28);
    assert_int_equal(t.td_attributes_mask, 0xffffffffull);
    assert_true(t.has_xfam);
    assert_int_equal(t.xfam, 0x61ae7);
    assert_int_equal(t.xfam_mask, UINT64_MAX); /* no mask: every bit */
    assert_true(t.has_min_tee_tcb_svn && t.min_tee_tcb_svn[0] == 4 && t.min_tee_tcb_svn[2] == 3);
    assert_false(t.debug);

    mr_snp_package s;
    MR_ASSERT_OK(mr_manifest_snp_package(snp, &s));
    assert_true(s.has_measurement && s.measurement[10] == 0x44);
    assert_true(s.has_host_data && s.host_data[31] == 0x55);
    assert_true(s.has_id_key_digest && !s.has_author_key_digest);
    assert_true(s.has_family_id && s.family_id[0] == 0x77 && s.has_image_id && s.image_id[15] == 0x88);
    assert_true(s.has_smt && !s.smt && s.allow_migration_agent);
    assert_true(s.has_single_socket && s.single_socket);
    assert_true(s.has_vmpl);
    assert_int_equal(s.vmpl, 1);
    assert_int_equal(s.min_guest_svn, 9);
    assert_int_equal(s.min_bl, 3);
    assert_int_equal(s.min_snp, 20);
    assert_int_equal(s.min_ucode, 209);
    assert_int_equal(s.signers, MR_SNP_SIGNER_VCEK | MR_SNP_SIGNER_VLEK);
    mr_manifest_free(m);

    /* null = not a CVM package; an empty SNP object is one (and needs a measurement) */
    const char *one[] = {"p"};
    MR_ASSERT_OK(decode_check("\"p\":{\"UniqueID\":\"" H32("ab") "\",\"TDX\":null,\"SNP\":null}",
                              one, 1, &m));
    assert_false(m->packages.items[0].tdx.present || m->packages.items[0].snp.present);
    mr_manifest_free(m);
    MR_ASSERT_OK(decode_check("\"p\":{\"Debug\":true,\"SNP\":{}}", one, 1, &m));
    assert_true(m->packages.items[0].snp.present);
    mr_snp_package d;
    MR_ASSERT_OK(mr_manifest_snp_package(&m->packages.items[0], &d));
    assert_true(d.debug && !d.has_measurement && d.signers == 0);
    mr_manifest_free(m);
}

static void test_validation_errors(void **state)
{
    (void)state;
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"11\"}}", "p",
                "invalid TDX.MRTD in package p: want 96 hex digits");
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"" H48("zz") "\"}}", "p", "invalid TDX.MRTD");
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"" H48("11") "\",\"RTMR3\":\"00\"}}", "p",
                "invalid TDX.RTMR3 in package p");
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"" H48("11") "\",\"XFAM\":\"00\"}}", "p",
                "invalid TDX.XFAM in package p: want 16 hex digits");
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"" H48("11") "\",\"MinTEETCBSVN\":\"0401\"}}", "p",
                "invalid TDX.MinTEETCBSVN in package p: want 32 hex digits");
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"" H48("11") "\",\"XFAMMask\":\"ffffffffffffffff\"}}",
                "p", "TDX.XFAMMask in package p needs TDX.XFAM");
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"" H48("11")
                "\",\"TDAttributesMask\":\"ffffffffffffffff\"}}",
                "p", "TDX.TDAttributesMask in package p needs TDX.TDAttributes");
    check_fails("\"p\":{\"TDX\":{}}", "p", "manifest misses value for TDX.MRTD (or an RTMR) in package p");
    check_fails("\"p\":{\"SNP\":{}}", "p", "manifest misses value for SNP.Measurement in package p");
    check_fails("\"p\":{\"TDX\":{\"MRTD\":\"" H48("11") "\"},\"SNP\":{}}", "p",
                "package p defines both TDX and SNP");
    check_fails("\"p\":{\"UniqueID\":\"" H32("ab") "\",\"TDX\":{\"MRTD\":\"" H48("11") "\"}}", "p",
                "package p describes a TDX workload: UniqueID, SignerID, ProductID and "
                "SecurityVersion apply to SGX enclaves only");
    check_fails("\"p\":{\"SecurityVersion\":2,\"SNP\":{\"Measurement\":\"" H48("11") "\"}}", "p",
                "package p describes a SNP workload");
    check_fails("\"p\":{\"SNP\":{\"Measurement\":\"" H48("11") "\",\"HostData\":\"" H48("11")
                "\"}}",
                "p", "invalid SNP.HostData in package p: want 64 hex digits");
    check_fails("\"p\":{\"SNP\":{\"Measurement\":\"" H48("11") "\",\"FamilyID\":\"11\"}}", "p",
                "invalid SNP.FamilyID in package p: want 32 hex digits");
    check_fails("\"p\":{\"SNP\":{\"Measurement\":\"" H48("11") "\",\"VMPL\":4}}", "p",
                "invalid SNP.VMPL in package p: want 0, 1, 2 or 3");
    check_fails("\"p\":{\"SNP\":{\"Measurement\":\"" H48("11") "\",\"MinGuestSVN\":4294967296}}",
                "p", "invalid SNP.MinGuestSVN in package p");
    check_fails("\"p\":{\"SNP\":{\"Measurement\":\"" H48("11")
                "\",\"AcceptedSigningKeys\":[\"VCEK\",\"ARK\"]}}",
                "p", "unknown SNP.AcceptedSigningKeys entry \"ARK\" in package p (want VCEK or VLEK)");
    check_fails("\"p\":{\"AcceptedTCBStatuses\":[\"OutOfDate\"],\"SNP\":{\"Measurement\":\"" H48("11")
                "\"}}",
                "p", "AcceptedTCBStatuses and AcceptedAdvisories do not apply to the SNP package p");
    /* wrong JSON types are the decoder's errors */
    check_fails("\"p\":{\"TDX\":{\"MRTD\":5}}", "p", "cannot unmarshal");
    check_fails("\"p\":{\"SNP\":{\"Measurement\":\"" H48("11") "\",\"MinimumTCB\":{\"SNP\":300}}}",
                "p", "cannot unmarshal");
    check_fails("\"p\":{\"SNP\":{\"Measurement\":\"" H48("11") "\",\"Policy\":{\"SMT\":1}}}", "p",
                "cannot unmarshal");
    check_fails("\"p\":{\"SNP\":[]}", "p", "cannot unmarshal");
}

static void test_debug_without_measurement(void **state)
{
    (void)state;
    mr_manifest *m = NULL;
    const char *one[] = {"p"};
    /* in debug mode a missing measurement is only a warning, as for SGX */
    MR_ASSERT_OK(decode_check("\"p\":{\"Debug\":true,\"TDX\":{}}", one, 1, &m));
    mr_manifest_free(m);
    /* a package update cannot touch CVM packages */
    MR_ASSERT_OK(decode_check("\"p\":{\"TDX\":{\"MRTD\":\"" H48("11") "\"}}", one, 1, &m));
    static const char upd[] = "{\"Packages\":{\"p\":{\"SecurityVersion\":3}}}";
    mr_manifest *u = NULL;
    MR_ASSERT_OK(mr_manifest_decode((const uint8_t *)upd, strlen(upd), &u));
    MR_ASSERT_FAIL(mr_manifest_check_package_update(u, m), MR_ERR_USAGE,
                   "describes a confidential VM");
    mr_manifest_free(u);
    mr_manifest_free(m);
}

static mr_result op_decode_convert(void *arg)
{
    (void)arg;
    char pkgs[4096];
    mr_manifest *m = NULL;
    mr_tdx_package t;
    mr_snp_package s;
    (void)snprintf(pkgs, sizeof(pkgs), "%s,%s", TDX_PKG, SNP_PKG);
    const char *ms[] = {"tdx", "snp"};
    mr_result r = decode_check(pkgs, ms, 2, &m);
    if (mr_ok(r))
        r = mr_manifest_tdx_package(mr_manifest_find_package(m, "tdx"), &t);
    if (mr_ok(r))
        r = mr_manifest_snp_package(mr_manifest_find_package(m, "snp"), &s);
    mr_manifest_free(m);
    return r;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    assert_true(mr_test_alloc_sweep("decode, check, convert", op_decode_convert, NULL) > 0);
}

void cvm_run_manifest_tests(int *failures)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_and_convert),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_debug_without_measurement),
        cmocka_unit_test(test_alloc_failures),
    };
    *failures += cmocka_run_group_tests_name("cvm_manifest", tests, NULL, NULL);
}
