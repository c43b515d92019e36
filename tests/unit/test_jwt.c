/*
 * Copyright (C) Maestro authors
 */

/*
 * JWT verification: HS256, RS256 and ES256 tokens signed here with keys
 * made here (PEM and JWKS files), and the refusals: expired, not yet
 * valid, issued in the future, wrong aud / iss, bad signature, alg none,
 * HS/RS confusion, unknown kid, cut tokens.
 */

#include "mst_test.h"
#include "mst_jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>


#define T_NOW     1700000000
#define T_SECRET  "0123456789abcdef0123456789abcdef-hs"


static EVP_PKEY  *t_rsa, *t_ec;
static char      *t_dir;
static char       t_rsa_pem[512], t_jwks[512];


static void
t_b64(const unsigned char *in, size_t len, char *out)
{
    static const char  a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t    i, n, bits;
    uint32_t  acc;

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = a[(acc >> bits) & 0x3f];
        }
    }

    if (bits > 0) {
        out[n++] = a[(acc << (6 - bits)) & 0x3f];
    }

    out[n] = '\0';
}


/* a token: header alg/kid, the claims as given, signed with key */
static char *
t_sign(const char *alg, const char *kid, const char *claims, EVP_PKEY *key,
    const char *secret)
{
    char           *tok, hdr[256];
    size_t          n, slen;
    unsigned int    hl;
    EVP_MD_CTX     *ctx;
    ECDSA_SIG      *es;
    unsigned char   sig[1024], raw[64];
    const BIGNUM   *r, *s;
    const unsigned char  *p;

    tok = malloc(16384);
    assert_non_null(tok);

    if (kid != NULL) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\","
                 "\"kid\":\"%s\"}", alg, kid);
    } else {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    }

    t_b64((unsigned char *) hdr, strlen(hdr), tok);
    n = strlen(tok);
    tok[n++] = '.';
    t_b64((unsigned char *) claims, strlen(claims), tok + n);
    n = strlen(tok);

    slen = 0;

    if (secret != NULL) {
        assert_non_null(HMAC(EVP_sha256(), secret, (int) strlen(secret),
                             (unsigned char *) tok, n, sig, &hl));
        slen = hl;

    } else if (key != NULL) {
        ctx = EVP_MD_CTX_new();
        slen = sizeof(sig);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
                                            key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &slen,
                                        (unsigned char *) tok, n), 1);
        EVP_MD_CTX_free(ctx);

        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
            p = sig;
            es = d2i_ECDSA_SIG(NULL, &p, (long) slen);
            assert_non_null(es);
            ECDSA_SIG_get0(es, &r, &s);
            assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
            assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
            ECDSA_SIG_free(es);
            memcpy(sig, raw, 64);
            slen = 64;
        }
    }

    tok[n++] = '.';
    t_b64(sig, slen, tok + n);

    return tok;
}


static void
t_bn_b64(EVP_PKEY *key, const char *param, char *out, int pad)
{
    BIGNUM         *bn;
    unsigned char   raw[512];
    int             len;

    bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(key, param, &bn), 1);
    len = pad ? BN_bn2binpad(bn, raw, pad) : BN_bn2bin(bn, raw);
    t_b64(raw, (size_t) len, out);
    BN_free(bn);
}


static int
t_setup(void **state)
{
    FILE  *f;
    char   n[600], e[16], x[64], y[64], k[128];

    t_dir = mst_test_tmpdir();
    t_rsa = EVP_RSA_gen(2048);
    t_ec = EVP_EC_gen("P-256");
    assert_non_null(t_rsa);
    assert_non_null(t_ec);

    snprintf(t_rsa_pem, sizeof(t_rsa_pem), "%s/rsa.pem", t_dir);
    f = fopen(t_rsa_pem, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, t_rsa), 1);
    fclose(f);

    t_bn_b64(t_rsa, OSSL_PKEY_PARAM_RSA_N, n, 0);
    t_bn_b64(t_rsa, OSSL_PKEY_PARAM_RSA_E, e, 0);
    t_bn_b64(t_ec, OSSL_PKEY_PARAM_EC_PUB_X, x, 32);
    t_bn_b64(t_ec, OSSL_PKEY_PARAM_EC_PUB_Y, y, 32);
    t_b64((unsigned char *) T_SECRET, strlen(T_SECRET), k);

    snprintf(t_jwks, sizeof(t_jwks), "%s/jwks.json", t_dir);
    f = fopen(t_jwks, "w");
    assert_non_null(f);
    fprintf(f, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"%s\","
            "\"e\":\"%s\"},{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\","
            "\"x\":\"%s\",\"y\":\"%s\"},{\"kty\":\"oct\",\"kid\":\"h1\","
            "\"k\":\"%s\"},{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"x\"}]}",
            n, e, x, y, k);
    fclose(f);

    return 0;
}


static int
t_teardown(void **state)
{
    EVP_PKEY_free(t_rsa);
    EVP_PKEY_free(t_ec);
    mst_test_rmdir(t_dir);
    return 0;
}


static mst_jwt_policy_t  t_policy = { "https://idp", "maestro", "org", 30, 1 };


static int
t_verify(mst_jwt_keys_t *k, const char *tok, int64_t now, char *why,
    mst_jwt_claims_t *c)
{
    return mst_jwt_verify(k, &t_policy, tok, strlen(tok), now, c, why,
                          MST_ERRLEN);
}


#define T_CLAIMS(extra)                                                    \
    "{\"sub\":\"alice\",\"org\":\"red\",\"iss\":\"https://idp\","         \
    "\"aud\":[\"x\",\"maestro\"],\"iat\":1700000000,\"nbf\":1700000000,"  \
    "\"exp\":1700000600" extra "}"


static void
test_algs(void **state)
{
    char              why[MST_ERRLEN], *tok;
    mst_jwt_keys_t   *k;
    mst_jwt_claims_t  c;

    k = mst_jwt_keys_new();
    assert_int_equal(mst_jwt_keys_load_file(k, t_jwks, NULL, why,
                                            sizeof(why)), MST_OK);
    assert_int_equal(mst_jwt_keys_count(k), 3);     /* "enc" skipped */

    tok = t_sign("RS256", "r1", T_CLAIMS(""), t_rsa, NULL);
    assert_true(mst_jwt_looks_like(tok, strlen(tok)));
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_OK);
    assert_string_equal(c.sub, "alice");
    assert_string_equal(c.team, "red");
    assert_string_equal(c.alg, "RS256");
    assert_int_equal(c.exp, 1700000600);
    free(tok);

    tok = t_sign("ES256", "e1", T_CLAIMS(""), t_ec, NULL);
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_OK);
    assert_string_equal(c.kid, "e1");
    free(tok);

    tok = t_sign("HS256", "h1", T_CLAIMS(""), NULL, T_SECRET);
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_OK);
    free(tok);

    /* a kid names one key: the wrong type for it is refused */
    tok = t_sign("ES256", "r1", T_CLAIMS(""), t_ec, NULL);
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_EDENIED);
    assert_string_equal(why, "no ES256 key with this kid");
    free(tok);

    tok = t_sign("RS256", "nope", T_CLAIMS(""), t_rsa, NULL);
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_EDENIED);
    assert_string_equal(why, "no RS256 key with this kid");
    free(tok);

    /* no kid: only kid-less keys, and there are none */
    tok = t_sign("RS256", NULL, T_CLAIMS(""), t_rsa, NULL);
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_EDENIED);
    assert_string_equal(why, "no RS256 key");
    free(tok);

    mst_jwt_keys_free(k);
}


static void
test_refusals(void **state)
{
    size_t            i, n;
    char              why[MST_ERRLEN], *tok, *pem, *bad;
    FILE             *f;
    mst_jwt_keys_t   *k;
    mst_jwt_claims_t  c;

    k = mst_jwt_keys_new();
    assert_int_equal(mst_jwt_keys_load_file(k, t_rsa_pem, NULL, why,
                                            sizeof(why)), MST_OK);
    assert_int_equal(mst_jwt_keys_add_secret(k, (unsigned char *) T_SECRET,
                                             strlen(T_SECRET), NULL, why,
                                             sizeof(why)), MST_OK);
    assert_int_equal(mst_jwt_keys_add_secret(k, (unsigned char *) "short",
                                             5, "s", why, sizeof(why)),
                     MST_EINVAL);

    tok = t_sign("RS256", NULL, T_CLAIMS(""), t_rsa, NULL);
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_OK);

    /* time, with 30 s of leeway */
    assert_int_equal(t_verify(k, tok, 1700000629, why, &c), MST_OK);
    assert_int_equal(t_verify(k, tok, 1700000630, why, &c), MST_EDENIED);
    assert_string_equal(why, "the token has expired");
    assert_int_equal(t_verify(k, tok, T_NOW - 30, why, &c), MST_OK);
    assert_int_equal(t_verify(k, tok, T_NOW - 31, why, &c), MST_EDENIED);
    assert_string_equal(why, "the token is not valid yet");

    /* a flipped signature byte */
    n = strlen(tok);
    tok[n - 5] = (tok[n - 5] == 'A') ? 'B' : 'A';
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_EDENIED);
    assert_string_equal(why, "bad signature");

    /* every cut of a valid token is refused, none crashes */
    tok[n - 5] = (tok[n - 5] == 'A') ? 'B' : 'A';
    for (i = 0; i < n; i++) {
        assert_int_not_equal(mst_jwt_verify(k, &t_policy, tok, i, T_NOW, &c,
                                            why, sizeof(why)), MST_OK);
    }
    free(tok);

#define T_REFUSED(tok_expr, want)                                          \
    tok = tok_expr;                                                        \
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_EDENIED);       \
    assert_string_equal(why, want);                                        \
    free(tok)

    T_REFUSED(t_sign("RS256", NULL, "{\"sub\":\"a\",\"iss\":\"https://idp\","
                     "\"aud\":\"maestro\"}", t_rsa, NULL),
              "the token has no valid \"exp\"");
    /* a claim twice: which one counts is ambiguous, so neither */
    T_REFUSED(t_sign("RS256", NULL, T_CLAIMS(",\"iat\":1800000000"), t_rsa,
                     NULL), "the claims are not a JSON object");
    T_REFUSED(t_sign("RS256", NULL, "{\"sub\":\"a\",\"iss\":\"https://idp\","
                     "\"aud\":\"maestro\",\"exp\":1700000600,"
                     "\"iat\":1800000000}", t_rsa, NULL),
              "the token was issued in the future");
    T_REFUSED(t_sign("RS256", NULL, "{\"sub\":\"a\",\"iss\":\"https://evil\","
                     "\"aud\":\"maestro\",\"exp\":1700000600}", t_rsa, NULL),
              "wrong issuer");
    T_REFUSED(t_sign("RS256", NULL, "{\"sub\":\"a\",\"iss\":\"https://idp\","
                     "\"aud\":\"other\",\"exp\":1700000600}", t_rsa, NULL),
              "wrong audience");
    T_REFUSED(t_sign("RS256", NULL, "{\"iss\":\"https://idp\","
                     "\"aud\":\"maestro\",\"exp\":1700000600}", t_rsa, NULL),
              "the token needs a \"sub\" of 1..128 characters");
    T_REFUSED(t_sign("RS256", NULL, "{\"sub\":\"a\",\"iss\":\"https://idp\","
                     "\"aud\":\"maestro\",\"exp\":\"soon\"}", t_rsa, NULL),
              "the token has no valid \"exp\"");
    T_REFUSED(t_sign("none", NULL, T_CLAIMS(""), NULL, NULL),
              "not a JWT");
    T_REFUSED(t_sign("RS512", NULL, T_CLAIMS(""), t_rsa, NULL),
              "alg must be HS256, RS256 or ES256");
    T_REFUSED(t_sign("HS256", NULL, T_CLAIMS(""), NULL, "another secret "
                     "of enough length......"), "bad signature");

    /* HS/RS confusion: the RSA public key's PEM as an HMAC secret */
    f = fopen(t_rsa_pem, "r");
    pem = calloc(1, 4096);
    assert_true(fread(pem, 1, 4095, f) > 0);
    fclose(f);
    T_REFUSED(t_sign("HS256", NULL, T_CLAIMS(""), NULL, pem), "bad signature");
    free(pem);

    /* a signature that is empty: "alg none" with a dummy */
    tok = t_sign("HS256", NULL, T_CLAIMS(""), NULL, T_SECRET);
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_OK);
    bad = strrchr(tok, '.');
    strcpy(bad + 1, "AA");
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_EDENIED);
    strcpy(bad + 1, "A=");
    assert_int_equal(t_verify(k, tok, T_NOW, why, &c), MST_EDENIED);
    assert_string_equal(why, "not a JWT");
    free(tok);

    assert_false(mst_jwt_looks_like("a..b", 4));
    assert_false(mst_jwt_looks_like("a.b", 3));
    assert_false(mst_jwt_looks_like("a.b.c.d", 7));

    mst_jwt_keys_free(k);
}


static void
test_load_errors(void **state)
{
    char             why[MST_ERRLEN], path[600];
    FILE            *f;
    mst_jwt_keys_t  *k;

    k = mst_jwt_keys_new();

    assert_int_equal(mst_jwt_keys_load_file(k, "/nonexistent", NULL, why,
                                            sizeof(why)), MST_EIO);

    snprintf(path, sizeof(path), "%s/junk", t_dir);
    f = fopen(path, "w");
    fputs("hello", f);
    fclose(f);
    assert_int_equal(mst_jwt_keys_load_file(k, path, NULL, why, sizeof(why)),
                     MST_EINVAL);
    assert_string_equal(why, "neither a PEM public key, a PEM certificate "
                        "nor a JWKS");

    f = fopen(path, "w");
    fputs("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\","
          "\"y\":\"AA\"}]}", f);
    fclose(f);
    assert_int_equal(mst_jwt_keys_load_file(k, path, NULL, why, sizeof(why)),
                     MST_EINVAL);
    assert_string_equal(why, "key 0: not a valid EC public key");

    assert_int_equal(mst_jwt_keys_load_file(k, t_jwks, "x", why,
                                            sizeof(why)), MST_EINVAL);
    assert_int_equal(mst_jwt_keys_load_file(k, t_rsa_pem, "k1", why,
                                            sizeof(why)), MST_OK);
    assert_int_equal(mst_jwt_keys_load_file(k, t_rsa_pem, "k1", why,
                                            sizeof(why)), MST_EINVAL);
    assert_string_equal(why, "duplicate kid \"k1\"");

    mst_jwt_keys_free(k);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_algs),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_load_errors),
    };

    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
