/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `marblerun recover` and `marblerun recover-with-signature` (+ public-key, encrypt-secret,
 * sign-secret), spec/marble-cli-k8s.md §4.5 and spec/coordinator.md §12.8.
 *
 * Secrets (decrypted recovery secrets, the RSA private key file) live in MR_BUF_SECRET
 * buffers and the EVP_PKEY; both are wiped when released.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/file.h"
#include "crypto/key.h"
#include "crypto/rsa.h"

static MR_RESULT no_pkcs11(const mr_cli *cli)
{
    static const char *const p11[] = {"pkcs11-config", "pkcs11-key-id", "pkcs11-key-label"};
    for (size_t i = 0; i < MR_ARRAY_LEN(p11); i++)
        MR_ENSURE(!mr_cli_changed(cli, p11[i]), MR_ERR_USAGE,
                  "--%s: PKCS #11 is not supported by this build of the CLI; use --key with a "
                  "PEM file",
                  p11[i]);
    return MR_SUCCESS;
}

/* The RSA private key of -k/--key (PKCS#8 or PKCS#1 PEM). */
static MR_RESULT load_key(const mr_cli *cli, bool required, EVP_PKEY **out)
{
    mr_result res = MR_FAILURE;
    mr_buf pem;
    mr_buf_init(&pem, 0, MR_BUF_SECRET);
    *out = NULL;
    MR_GUARD_OUT(no_pkcs11(cli));
    const char *path = mr_cli_str(cli, "key");
    if (path[0] == '\0') {
        MR_ENSURE_OUT(!required, MR_ERR_USAGE,
                      "at least one of the flags in the group [key pkcs11-key-id "
                      "pkcs11-key-label] is required");
        res = MR_SUCCESS;
        goto out;
    }
    MR_GUARD_OUT(mr_file_read(path, MR_CLI_FILE_MAX, &pem));
    if (!mr_ok(mr_key_private_from_pem(mr_buf_slice(&pem), out))) {
        mr_error_prefix("loading recovery key %s", path);
        goto out;
    }
    if (mr_key_type_of(*out) != MR_KEY_RSA) {
        EVP_PKEY_free(*out);
        *out = NULL;
        MR_BAIL_OUT(MR_ERR_USAGE, "loading recovery key %s: not an RSA private key", path);
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&pem);
    return res;
}

static bool plain_len(size_t n) { return n == 16 || n == 32; }

/* Reads the recovery secret file; when it is not a plain 16/32-byte secret and a key is given,
 * decrypts it with RSA-OAEP-SHA256. */
static MR_RESULT load_secret(const char *path, EVP_PKEY *key, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf raw;
    mr_buf_init(&raw, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_file_read(path, MR_CLI_FILE_MAX, &raw));
    if (plain_len(raw.len) || key == NULL) {
        MR_GUARD_OUT(mr_buf_append(out, raw.data, raw.len));
    } else if (!mr_ok(mr_rsa_oaep_decrypt(key, mr_buf_slice(&raw), out))) {
        mr_error_prefix("decrypting recovery secret");
        goto out;
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&raw);
    return res;
}

/* POST /api/v2/recover and the result lines. */
static MR_RESULT upload(const mr_cli_conn *c, const mr_buf *secret, const mr_buf *sig)
{
    mr_result res = MR_FAILURE;
    json_t *body = NULL, *data = NULL;
    json_t *s64 = mr_cli_json_b64(secret->data, secret->len);
    json_t *g64 = mr_cli_json_b64(sig->data, sig->len);
    if (s64 != NULL && g64 != NULL)
        body = json_pack("{soso}", "recoverySecret", s64, "recoverySecretSignature", g64);
    else {
        json_decref(s64);
        json_decref(g64);
    }
    MR_ENSURE_ALLOC_OUT(body);
    /* 1.7.0+: v2 only (the legacy endpoint cannot check signatures) */
    if (!mr_ok(mr_cli_api(c, "POST", "/api/v2/recover", body, NULL, NULL, 0, NULL, &data,
                          NULL))) {
        mr_error_prefix("recovering Coordinator");
        goto out;
    }
    json_t *rem = mr_cli_json_get(data, "remaining");
    json_int_t n = json_is_integer(rem) ? json_integer_value(rem) : 0;
    if (n == 0)
        printf("Recovery successful.\n");
    else
        printf("Secret was processed successfully. Upload the next secret. Remaining secrets: "
               "%lld\n",
               (long long)n);
    res = MR_SUCCESS;
out:
    mr_cli_json_wipe(body); /* the secret in base64 */
    json_decref(body);
    json_decref(data);
    return res;
}

static MR_RESULT run_recover(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    EVP_PKEY *key = NULL;
    mr_cli_conn c;
    mr_buf secret, sig;
    mr_cli_conn_init(&c);
    mr_buf_init(&secret, 0, MR_BUF_SECRET);
    mr_buf_init(&sig, 0, 0);
    MR_GUARD_OUT(load_key(cli, true, &key));
    MR_GUARD_OUT(load_secret(argv[0], key, &secret));
    MR_GUARD_OUT(mr_rsa_sign_pkcs1_sha256(key, mr_buf_slice(&secret), &sig));
    MR_GUARD_OUT(mr_cli_conn_attest(cli, argv[1], &c));
    MR_GUARD_OUT(upload(&c, &secret, &sig));
    MR_GUARD_OUT(mr_cli_conn_save_quote(cli, &c));
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(key);
    mr_buf_free(&secret);
    mr_buf_free(&sig);
    mr_cli_conn_clear(&c);
    return res;
}

static MR_RESULT run_recover_sig(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    mr_buf secret, sig;
    mr_cli_conn_init(&c);
    mr_buf_init(&secret, 0, MR_BUF_SECRET);
    mr_buf_init(&sig, 0, 0);
    MR_GUARD_OUT(mr_cli_require_flag(cli, "signature"));
    MR_GUARD_OUT(mr_file_read(argv[0], MR_CLI_FILE_MAX, &secret));
    MR_GUARD_OUT(mr_file_read(mr_cli_str(cli, "signature"), MR_CLI_FILE_MAX, &sig));
    MR_GUARD_OUT(mr_cli_conn_attest(cli, argv[1], &c));
    MR_GUARD_OUT(upload(&c, &secret, &sig));
    MR_GUARD_OUT(mr_cli_conn_save_quote(cli, &c));
    res = MR_SUCCESS;
out:
    mr_buf_free(&secret);
    mr_buf_free(&sig);
    mr_cli_conn_clear(&c);
    return res;
}

/* Writes to -o with O_EXCL, or prints when -o is not set (public-key only). */
static MR_RESULT emit_new(const mr_cli *cli, const void *data, size_t len, bool may_print)
{
    const char *path = mr_cli_str(cli, "output");
    if (path[0] == '\0') {
        MR_ENSURE(may_print, MR_ERR_USAGE, "required flag(s) \"output\" not set");
        MR_ENSURE(fwrite(data, 1, len, stdout) == len, MR_ERR_IO, "writing to stdout failed");
        return MR_SUCCESS;
    }
    return mr_cli_write_new_file(path, data, len);
}

static MR_RESULT run_public_key(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    json_t *data = NULL;
    mr_buf der, pem;
    EVP_PKEY *pub = NULL;
    mr_cli_conn_init(&c);
    mr_buf_init(&der, 0, 0);
    mr_buf_init(&pem, 0, 0);
    MR_GUARD_OUT(mr_cli_conn_attest(cli, argv[0], &c));
    MR_GUARD_OUT(mr_cli_api(&c, "GET", "/api/v2/recover/public-key", NULL, NULL, NULL, 0, NULL,
                            &data, NULL));
    MR_GUARD_OUT(mr_cli_json_b64_member(data, "ephemeralPublicKey", &der));
    MR_GUARD_OUT(mr_key_public_from_der(mr_buf_slice(&der), MR_KEYFMT_PKIX, &pub));
    MR_GUARD_OUT(mr_pem_encode_buf("PUBLIC KEY", der.data, der.len, &pem));
    MR_GUARD_OUT(emit_new(cli, pem.data, pem.len, true));
    MR_GUARD_OUT(mr_cli_conn_save_quote(cli, &c));
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(pub);
    json_decref(data);
    mr_buf_free(&der);
    mr_buf_free(&pem);
    mr_cli_conn_clear(&c);
    return res;
}

static MR_RESULT run_encrypt(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    EVP_PKEY *key = NULL, *pub = NULL;
    mr_buf secret, pem, ct;
    mr_buf_init(&secret, 0, MR_BUF_SECRET);
    mr_buf_init(&pem, 0, 0);
    mr_buf_init(&ct, 0, 0);
    MR_GUARD_OUT(mr_cli_require_flag(cli, "coordinator-pub-key"));
    MR_GUARD_OUT(mr_cli_require_flag(cli, "output"));
    MR_GUARD_OUT(load_key(cli, false, &key));
    MR_GUARD_OUT(mr_file_read(mr_cli_str(cli, "coordinator-pub-key"), MR_CLI_FILE_MAX, &pem));
    if (!mr_ok(mr_key_public_from_pem(mr_buf_slice(&pem), &pub))) {
        mr_error_prefix("loading Coordinator public key");
        goto out;
    }
    MR_GUARD_OUT(load_secret(argv[0], key, &secret));
    MR_GUARD_OUT(mr_rsa_oaep_encrypt(pub, mr_buf_slice(&secret), &ct));
    MR_GUARD_OUT(emit_new(cli, ct.data, ct.len, false));
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    mr_buf_free(&secret);
    mr_buf_free(&pem);
    mr_buf_free(&ct);
    return res;
}

static MR_RESULT run_sign(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    EVP_PKEY *key = NULL;
    mr_buf secret, sig;
    mr_buf_init(&secret, 0, MR_BUF_SECRET);
    mr_buf_init(&sig, 0, 0);
    MR_GUARD_OUT(mr_cli_require_flag(cli, "output"));
    MR_GUARD_OUT(load_key(cli, true, &key));
    MR_GUARD_OUT(load_secret(argv[0], key, &secret));
    MR_GUARD_OUT(mr_rsa_sign_pkcs1_sha256(key, mr_buf_slice(&secret), &sig));
    MR_GUARD_OUT(emit_new(cli, sig.data, sig.len, false));
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(key);
    mr_buf_free(&secret);
    mr_buf_free(&sig);
    return res;
}

#define KEY_FLAGS                                                                             \
    {"key", 'k', MR_FLAG_STRING, "", "Path to a the recovery private key (PEM, PKCS#8 or PKCS#1)"}, \
        {"pkcs11-config", 0, MR_FLAG_STRING, "",                                              \
         "Path to a PKCS#11 configuration file (not supported by this build)"},               \
        {"pkcs11-key-id", 0, MR_FLAG_STRING, "",                                              \
         "ID of the private key in the PKCS#11 token (not supported by this build)"},         \
        {"pkcs11-key-label", 0, MR_FLAG_STRING, "",                                           \
         "Label of the private key in the PKCS#11 token (not supported by this build)"}

static const mr_flag recover_flags[] = {
    KEY_FLAGS,
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

const mr_cmd mr_cmd_recover = {
    .name = "recover",
    .args_use = "<recovery_key_file> <IP:PORT>",
    .short_help = "Recover the MarbleRun Coordinator from a sealed state",
    .long_help = "Recover the MarbleRun Coordinator from a sealed state.\n<recovery_key_file> "
                 "is the recovery secret from the recovery data of `manifest set`, base64 "
                 "decoded: encrypted with the recovery public key, or already decrypted. The "
                 "secret is decrypted (if needed) and signed with the recovery private key "
                 "given by --key.",
    .example = "marblerun recover recovery_key_encrypted $MARBLERUN --key private.pem",
    .min_args = 2,
    .max_args = 2,
    .flags = recover_flags,
    .run = run_recover,
};

static const mr_flag public_key_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "", "Save the public key to this file (must not exist)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag encrypt_flags[] = {
    {"coordinator-pub-key", 0, MR_FLAG_STRING, "",
     "Path to the Coordinator's ephemeral public key (PEM), from `recover-with-signature "
     "public-key`"},
    {"output", 'o', MR_FLAG_STRING, "", "Save the encrypted secret to this file (must not exist)"},
    KEY_FLAGS,
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag sign_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "", "Save the signature to this file (must not exist)"},
    KEY_FLAGS,
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag rws_flags[] = {
    {"signature", 's', MR_FLAG_STRING, "",
     "Path to the signature of the recovery secret (PKCS#1 v1.5, SHA-256)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_cmd public_key_cmd = {
    .name = "public-key",
    .args_use = "<IP:PORT>",
    .short_help = "Retrieve the Coordinator's ephemeral public key for encrypting recovery "
                  "secrets",
    .long_help = "Retrieve the Coordinator's ephemeral RSA public key (PEM) for encrypting "
                 "recovery secrets. Only available while the Coordinator is in recovery mode.",
    .example = "marblerun recover-with-signature public-key $MARBLERUN -o coordinator-pub.pem",
    .min_args = 1,
    .max_args = 1,
    .flags = public_key_flags,
    .run = run_public_key,
};

static const mr_cmd encrypt_cmd = {
    .name = "encrypt-secret",
    .args_use = "<recovery_key_file>",
    .short_help = "Encrypt a recovery secret with the Coordinator's ephemeral public key",
    .long_help = "Encrypt a recovery secret with the Coordinator's ephemeral public key "
                 "(RSA-OAEP, SHA-256). With --key, a secret still encrypted with the recovery "
                 "key is decrypted first.",
    .example = "marblerun recover-with-signature encrypt-secret recovery_key "
               "--coordinator-pub-key coordinator-pub.pem -o recovery_key.enc",
    .min_args = 1,
    .max_args = 1,
    .flags = encrypt_flags,
    .run = run_encrypt,
};

static const mr_cmd sign_cmd = {
    .name = "sign-secret",
    .args_use = "<recovery_key_file>",
    .short_help = "Sign a recovery secret with the recovery private key",
    .long_help = "Sign a recovery secret (PKCS#1 v1.5 over SHA-256) with the recovery private "
                 "key. A secret still encrypted with the recovery key is decrypted first.",
    .example = "marblerun recover-with-signature sign-secret recovery_key --key private.pem -o "
               "recovery_key.sig",
    .min_args = 1,
    .max_args = 1,
    .flags = sign_flags,
    .run = run_sign,
};

static const mr_cmd *const rws_subs[] = {&public_key_cmd, &encrypt_cmd, &sign_cmd, NULL};

const mr_cmd mr_cmd_recover_with_signature = {
    .name = "recover-with-signature",
    .args_use = "<recovery_key_file> <IP:PORT>",
    .short_help = "Recover the MarbleRun Coordinator using a signed recovery secret",
    .long_help = "Recover the MarbleRun Coordinator using a recovery secret and its signature.\n"
                 "The secret is either decrypted or encrypted with the Coordinator's ephemeral "
                 "public key; the signature is over the plain secret.",
    .example = "marblerun recover-with-signature recovery_key.enc $MARBLERUN -s recovery_key.sig",
    .min_args = 2,
    .max_args = 2,
    .flags = rws_flags,
    .subs = rws_subs,
    .run = run_recover_sig,
};
