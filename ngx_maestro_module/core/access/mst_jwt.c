/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_jwt.h */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mst_jwt.h"


#define MST_JWT_SECRET_MIN  32      /* bytes: RFC 7518 3.2, >= hash size */
#define MST_JWT_RSA_MIN     2048    /* bits */
#define MST_JWT_KEYS_MAX    64
#define MST_JWT_FILE_MAX    (1024 * 1024)


typedef enum {
    MST_JWT_HS = 1,
    MST_JWT_RS,
    MST_JWT_ES
} mst_jwt_type_t;


typedef struct {
    mst_jwt_type_t   type;
    char             kid[MST_JWT_KID_MAX + 1];    /* "" : none */
    unsigned char   *secret;                      /* HS */
    size_t           slen;
    EVP_PKEY        *pkey;                        /* RS, ES */
} mst_jwt_key_t;


struct mst_jwt_keys_s {
    mst_jwt_key_t    key[MST_JWT_KEYS_MAX];
    size_t           n;
};


mst_jwt_keys_t *
mst_jwt_keys_new(void)
{
    return calloc(1, sizeof(mst_jwt_keys_t));
}


void
mst_jwt_keys_free(mst_jwt_keys_t *k)
{
    size_t  i;

    if (k == NULL) {
        return;
    }

    for (i = 0; i < k->n; i++) {
        if (k->key[i].secret != NULL) {
            OPENSSL_cleanse(k->key[i].secret, k->key[i].slen);
            free(k->key[i].secret);
        }

        EVP_PKEY_free(k->key[i].pkey);
    }

    free(k);
}


size_t
mst_jwt_keys_count(const mst_jwt_keys_t *k)
{
    return k->n;
}


/* base64url, no padding (RFC 7515 2): *out malloc()ed; -1 when invalid */
static int
mst_jwt_b64(const char *in, size_t len, unsigned char **out, size_t *olen)
{
    int             v;
    size_t          i, n;
    uint32_t        acc;
    unsigned int    bits;
    unsigned char  *p;

    *out = NULL;

    if (len % 4 == 1) {
        return -1;
    }

    p = malloc(len * 3 / 4 + 1);
    if (p == NULL) {
        return -1;
    }

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        if (in[i] >= 'A' && in[i] <= 'Z') {
            v = in[i] - 'A';
        } else if (in[i] >= 'a' && in[i] <= 'z') {
            v = in[i] - 'a' + 26;
        } else if (in[i] >= '0' && in[i] <= '9') {
            v = in[i] - '0' + 52;
        } else if (in[i] == '-') {
            v = 62;
        } else if (in[i] == '_') {
            v = 63;
        } else {
            free(p);
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            p[n++] = (unsigned char) (acc >> bits);
        }
    }

    /* the unused low bits must be zero: one encoding per value */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(p);
        return -1;
    }

    *out = p;
    *olen = n;

    return 0;
}


int
mst_jwt_looks_like(const char *token, size_t len)
{
    size_t  i, dots, seg;

    dots = 0;
    seg = 0;

    for (i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (seg == 0) {
                return 0;
            }
            dots++;
            seg = 0;
            continue;
        }

        if (!((token[i] >= 'A' && token[i] <= 'Z')
              || (token[i] >= 'a' && token[i] <= 'z')
              || (token[i] >= '0' && token[i] <= '9')
              || token[i] == '-' || token[i] == '_'))
        {
            return 0;
        }

        seg++;
    }

    return dots == 2 && seg > 0;
}


/* loading */

static mst_jwt_key_t *
mst_jwt_slot(mst_jwt_keys_t *k, const char *kid, char *err, size_t errlen)
{
    size_t  i;

    if (k->n == MST_JWT_KEYS_MAX) {
        (void) mst_err(err, errlen, MST_EINVAL, "more than %d JWT keys",
                       MST_JWT_KEYS_MAX);
        return NULL;
    }

    if (kid != NULL) {
        if (kid[0] == '\0' || strlen(kid) > MST_JWT_KID_MAX) {
            (void) mst_err(err, errlen, MST_EINVAL, "a kid is 1..%d "
                           "characters", MST_JWT_KID_MAX);
            return NULL;
        }

        for (i = 0; i < k->n; i++) {
            if (strcmp(k->key[i].kid, kid) == 0) {
                (void) mst_err(err, errlen, MST_EINVAL, "duplicate kid "
                               "\"%s\"", kid);
                return NULL;
            }
        }
    }

    memset(&k->key[k->n], 0, sizeof(mst_jwt_key_t));

    if (kid != NULL) {
        strcpy(k->key[k->n].kid, kid);
    }

    return &k->key[k->n];
}


int
mst_jwt_keys_add_secret(mst_jwt_keys_t *k, const unsigned char *secret,
    size_t len, const char *kid, char *err, size_t errlen)
{
    mst_jwt_key_t  *key;

    if (len < MST_JWT_SECRET_MIN) {
        return mst_err(err, errlen, MST_EINVAL, "an HS256 secret needs at "
                       "least %d bytes", MST_JWT_SECRET_MIN);
    }

    key = mst_jwt_slot(k, kid, err, errlen);
    if (key == NULL) {
        return MST_EINVAL;
    }

    key->secret = malloc(len);
    if (key->secret == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    memcpy(key->secret, secret, len);
    key->slen = len;
    key->type = MST_JWT_HS;
    k->n++;

    return MST_OK;
}


/* the key's JWS type; 0 for a key no algorithm here can use */
static mst_jwt_type_t
mst_jwt_pkey_type(EVP_PKEY *pkey)
{
    char    group[64];
    size_t  glen;

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
        return EVP_PKEY_get_bits(pkey) >= MST_JWT_RSA_MIN ? MST_JWT_RS : 0;

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &glen)
            == 1
            && strcmp(group, "prime256v1") == 0)
        {
            return MST_JWT_ES;
        }
        return 0;

    default:
        return 0;
    }
}


static int
mst_jwt_add_pkey(mst_jwt_keys_t *k, EVP_PKEY *pkey, const char *kid,
    char *err, size_t errlen)
{
    mst_jwt_key_t   *key;
    mst_jwt_type_t   type;

    type = mst_jwt_pkey_type(pkey);

    if (type == 0) {
        EVP_PKEY_free(pkey);
        return mst_err(err, errlen, MST_EINVAL, "not an RSA key of at "
                       "least %d bits or an EC P-256 key", MST_JWT_RSA_MIN);
    }

    key = mst_jwt_slot(k, kid, err, errlen);
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return MST_EINVAL;
    }

    key->type = type;
    key->pkey = pkey;
    k->n++;

    return MST_OK;
}


/* a base64url member of a JWK as bytes */
static int
mst_jwt_jwk_bytes(json_t *jwk, const char *name, unsigned char **out,
    size_t *len)
{
    json_t  *v;

    v = json_object_get(jwk, name);

    if (!json_is_string(v)
        || mst_jwt_b64(json_string_value(v), json_string_length(v), out,
                       len) != 0
        || *len == 0)
    {
        free(*out);
        *out = NULL;
        return -1;
    }

    return 0;
}


static EVP_PKEY *
mst_jwt_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx;

    pkey = NULL;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);

    return pkey;
}


static EVP_PKEY *
mst_jwt_jwk_rsa(json_t *jwk)
{
    size_t           nlen, elen;
    BIGNUM          *n, *e;
    EVP_PKEY        *pkey;
    unsigned char   *nb, *eb;
    OSSL_PARAM_BLD  *bld;

    pkey = NULL;
    nb = NULL;
    eb = NULL;
    n = NULL;
    e = NULL;
    bld = NULL;

    if (mst_jwt_jwk_bytes(jwk, "n", &nb, &nlen) != 0
        || mst_jwt_jwk_bytes(jwk, "e", &eb, &elen) != 0)
    {
        goto done;
    }

    n = BN_bin2bn(nb, (int) nlen, NULL);
    e = BN_bin2bn(eb, (int) elen, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n == NULL || e == NULL || bld == NULL
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
    {
        goto done;
    }

    pkey = mst_jwt_fromdata("RSA", bld);

done:

    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);

    return pkey;
}


static EVP_PKEY *
mst_jwt_jwk_ec(json_t *jwk)
{
    size_t           xlen, ylen;
    EVP_PKEY        *pkey;
    EVP_PKEY_CTX    *ctx;
    unsigned char   *x, *y, pub[65];
    OSSL_PARAM_BLD  *bld;

    pkey = NULL;
    x = NULL;
    y = NULL;
    bld = NULL;

    if (!json_is_string(json_object_get(jwk, "crv"))
        || strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256")
           != 0
        || mst_jwt_jwk_bytes(jwk, "x", &x, &xlen) != 0
        || mst_jwt_jwk_bytes(jwk, "y", &y, &ylen) != 0
        || xlen != 32 || ylen != 32)
    {
        goto done;
    }

    /* an uncompressed point: 04 || x || y */
    pub[0] = 0x04;
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           "prime256v1", 0) != 1
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            pub, sizeof(pub)) != 1)
    {
        goto done;
    }

    pkey = mst_jwt_fromdata("EC", bld);

    /* a point off the curve would let a signature check leak the key */
    if (pkey != NULL) {
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

        if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }

        EVP_PKEY_CTX_free(ctx);
    }

done:

    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);

    return pkey;
}


static int
mst_jwt_load_jwks(mst_jwt_keys_t *k, json_t *jwks, char *err, size_t errlen)
{
    int             rc;
    size_t          i, len;
    json_t         *keys, *jwk, *v;
    EVP_PKEY       *pkey;
    const char     *kty, *kid, *use;
    unsigned char  *secret;

    keys = json_object_get(jwks, "keys");

    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        return mst_err(err, errlen, MST_EINVAL, "a JWKS needs a non-empty "
                       "\"keys\" array");
    }

    json_array_foreach(keys, i, jwk) {
        kty = json_string_value(json_object_get(jwk, "kty"));
        v = json_object_get(jwk, "kid");
        kid = json_string_value(v);
        use = json_string_value(json_object_get(jwk, "use"));

        if (kty == NULL || (v != NULL && kid == NULL)) {
            return mst_err(err, errlen, MST_EINVAL, "key %zu: \"kty\" and "
                           "\"kid\" must be strings", i);
        }

        if (use != NULL && strcmp(use, "sig") != 0) {
            continue;           /* an encryption key: not ours */
        }

        if (strcmp(kty, "oct") == 0) {
            if (mst_jwt_jwk_bytes(jwk, "k", &secret, &len) != 0) {
                return mst_err(err, errlen, MST_EINVAL, "key %zu: bad "
                               "\"k\"", i);
            }

            rc = mst_jwt_keys_add_secret(k, secret, len, kid, err, errlen);
            OPENSSL_cleanse(secret, len);
            free(secret);

        } else if (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0) {
            pkey = (kty[0] == 'R') ? mst_jwt_jwk_rsa(jwk)
                                   : mst_jwt_jwk_ec(jwk);
            if (pkey == NULL) {
                return mst_err(err, errlen, MST_EINVAL, "key %zu: not a "
                               "valid %s public key", i, kty);
            }

            rc = mst_jwt_add_pkey(k, pkey, kid, err, errlen);

        } else {
            return mst_err(err, errlen, MST_EINVAL, "key %zu: kty \"%s\" is "
                           "not RSA, EC or oct", i, kty);
        }

        if (rc != MST_OK) {
            return rc;
        }
    }

    return MST_OK;
}


int
mst_jwt_keys_load_file(mst_jwt_keys_t *k, const char *path,
    const char *kid, char *err, size_t errlen)
{
    int            rc;
    BIO           *bio;
    char          *text;
    long           len;
    FILE          *f;
    X509          *x509;
    json_t        *jwks;
    EVP_PKEY      *pkey;
    json_error_t   jerr;

    f = fopen(path, "rb");
    if (f == NULL) {
        return mst_err(err, errlen, MST_EIO, "cannot open the file");
    }

    text = malloc(MST_JWT_FILE_MAX + 1);
    len = (text != NULL) ? (long) fread(text, 1, MST_JWT_FILE_MAX + 1, f)
                         : -1;
    fclose(f);

    if (len < 0 || len > MST_JWT_FILE_MAX) {
        free(text);
        return mst_err(err, errlen, MST_EINVAL, "not readable or larger "
                       "than 1M");
    }

    text[len] = '\0';

    if (memchr(text, '{', len) != NULL && strstr(text, "-----BEGIN") == NULL)
    {
        jwks = json_loadb(text, (size_t) len, JSON_REJECT_DUPLICATES, &jerr);
        free(text);

        if (jwks == NULL) {
            return mst_err(err, errlen, MST_EINVAL, "JWKS: line %d: %s",
                           jerr.line, jerr.text);
        }

        if (kid != NULL) {
            json_decref(jwks);
            return mst_err(err, errlen, MST_EINVAL, "a JWKS names its keys' "
                           "kid itself");
        }

        rc = mst_jwt_load_jwks(k, jwks, err, errlen);
        json_decref(jwks);

        return rc;
    }

    bio = BIO_new_mem_buf(text, (int) len);
    pkey = (bio != NULL) ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;

    if (pkey == NULL && bio != NULL) {
        /* a certificate: its public key */
        (void) BIO_reset(bio);
        x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x509 != NULL) {
            pkey = X509_get_pubkey(x509);
            X509_free(x509);
        }
    }

    BIO_free(bio);
    free(text);

    if (pkey == NULL) {
        return mst_err(err, errlen, MST_EINVAL, "neither a PEM public key, "
                       "a PEM certificate nor a JWKS");
    }

    return mst_jwt_add_pkey(k, pkey, kid, err, errlen);
}


/* verification */

static int
mst_jwt_hs(const mst_jwt_key_t *key, const char *msg, size_t mlen,
    const unsigned char *sig, size_t slen)
{
    unsigned int   n;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    if (HMAC(EVP_sha256(), key->secret, (int) key->slen,
             (const unsigned char *) msg, mlen, mac, &n) == NULL
        || n != 32 || slen != 32)
    {
        return 0;
    }

    return CRYPTO_memcmp(mac, sig, 32) == 0;
}


static int
mst_jwt_pk(const mst_jwt_key_t *key, const char *msg, size_t mlen,
    const unsigned char *sig, size_t slen)
{
    int             ok, dlen;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    EVP_MD_CTX     *ctx;
    unsigned char  *der, *p;

    der = NULL;
    dlen = 0;

    if (key->type == MST_JWT_ES) {
        /* JWS: R || S, 32 bytes each; libcrypto wants DER */
        if (slen != 64) {
            return 0;
        }

        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, 32, NULL);
        s = BN_bin2bn(sig + 32, 32, NULL);

        if (es == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(es, r, s) != 1)
        {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return 0;
        }

        dlen = i2d_ECDSA_SIG(es, NULL);
        der = (dlen > 0) ? malloc(dlen) : NULL;
        p = der;

        if (der == NULL || i2d_ECDSA_SIG(es, &p) != dlen) {
            ECDSA_SIG_free(es);
            free(der);
            return 0;
        }

        ECDSA_SIG_free(es);
        sig = der;
        slen = (size_t) dlen;
    }

    ctx = EVP_MD_CTX_new();

    ok = ctx != NULL
         && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key->pkey)
            == 1
         && EVP_DigestVerify(ctx, sig, slen, (const unsigned char *) msg,
                             mlen) == 1;

    EVP_MD_CTX_free(ctx);
    free(der);

    return ok;
}


/* a JSON object from one base64url segment, or NULL */
static json_t *
mst_jwt_segment(const char *seg, size_t len)
{
    size_t          n;
    json_t         *j;
    unsigned char  *raw;
    json_error_t    jerr;

    if (mst_jwt_b64(seg, len, &raw, &n) != 0) {
        return NULL;
    }

    j = json_loadb((char *) raw, n, JSON_REJECT_DUPLICATES, &jerr);
    free(raw);

    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }

    return j;
}


/* a NumericDate claim: 0 absent, 1 read, -1 not a number */
static int
mst_jwt_time(json_t *claims, const char *name, int64_t *t)
{
    json_t  *v;

    v = json_object_get(claims, name);

    if (v == NULL) {
        return 0;
    }

    if (!json_is_number(v)) {
        return -1;
    }

    *t = (int64_t) json_number_value(v);

    return 1;
}


static int
mst_jwt_aud(json_t *aud, const char *want)
{
    size_t   i;
    json_t  *v;

    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), want) == 0;
    }

    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) {
            return 1;
        }
    }

    return 0;
}


/* a claim copied into dst (129 bytes): 1..128 bytes without NUL */
static int
mst_jwt_name(json_t *v, char *dst)
{
    size_t  len;

    if (!json_is_string(v)) {
        return -1;
    }

    len = json_string_length(v);

    if (len == 0 || len > 128 || memchr(json_string_value(v), '\0', len)) {
        return -1;
    }

    memcpy(dst, json_string_value(v), len + 1);

    return 0;
}


static int
mst_jwt_claims(const mst_jwt_policy_t *p, json_t *c, int64_t now,
    mst_jwt_claims_t *out, char *err, size_t errlen)
{
    int          has;
    int64_t      t;
    json_t      *v;
    const char  *team;

    has = mst_jwt_time(c, "exp", &t);
    if (has < 0 || (has == 0 && p->require_exp)) {
        return mst_err(err, errlen, MST_EDENIED, "the token has no valid "
                       "\"exp\"");
    }
    if (has > 0) {
        if (now >= t + p->leeway_s) {
            return mst_err(err, errlen, MST_EDENIED, "the token has "
                           "expired");
        }
        out->exp = t;
    }

    has = mst_jwt_time(c, "nbf", &t);
    if (has < 0 || (has > 0 && now + p->leeway_s < t)) {
        return mst_err(err, errlen, MST_EDENIED, "the token is not valid "
                       "yet");
    }

    has = mst_jwt_time(c, "iat", &t);
    if (has < 0 || (has > 0 && now + p->leeway_s < t)) {
        return mst_err(err, errlen, MST_EDENIED, "the token was issued in "
                       "the future");
    }

    if (p->issuer != NULL) {
        v = json_object_get(c, "iss");
        if (!json_is_string(v) || strcmp(json_string_value(v), p->issuer))
        {
            return mst_err(err, errlen, MST_EDENIED, "wrong issuer");
        }
    }

    if (p->audience != NULL && !mst_jwt_aud(json_object_get(c, "aud"),
                                            p->audience))
    {
        return mst_err(err, errlen, MST_EDENIED, "wrong audience");
    }

    if (mst_jwt_name(json_object_get(c, "sub"), out->sub) != 0) {
        return mst_err(err, errlen, MST_EDENIED, "the token needs a \"sub\" "
                       "of 1..128 characters");
    }

    team = p->team_claim ? p->team_claim : "team";
    v = json_object_get(c, team);

    if (v != NULL && mst_jwt_name(v, out->team) != 0) {
        return mst_err(err, errlen, MST_EDENIED, "the \"%s\" claim must be "
                       "a string of 1..128 characters", team);
    }

    return MST_OK;
}


int
mst_jwt_verify(const mst_jwt_keys_t *k, const mst_jwt_policy_t *p,
    const char *token, size_t len, int64_t now_s, mst_jwt_claims_t *out,
    char *err, size_t errlen)
{
    int              rc, ok, tried;
    size_t           i, slen;
    json_t          *hdr, *claims, *v;
    const char      *d1, *d2, *alg, *kid;
    unsigned char   *sig;
    mst_jwt_type_t   type;

    if (k == NULL || p == NULL || token == NULL || out == NULL) {
        return MST_EINVAL;
    }

    memset(out, 0, sizeof(mst_jwt_claims_t));

    if (len > MST_JWT_TOKEN_MAX || !mst_jwt_looks_like(token, len)) {
        return mst_err(err, errlen, MST_EDENIED, "not a JWT");
    }

    d1 = memchr(token, '.', len);
    d2 = memchr(d1 + 1, '.', token + len - d1 - 1);

    hdr = mst_jwt_segment(token, d1 - token);
    if (hdr == NULL) {
        return mst_err(err, errlen, MST_EDENIED, "the header is not a JSON "
                       "object");
    }

    alg = json_string_value(json_object_get(hdr, "alg"));
    v = json_object_get(hdr, "kid");
    kid = json_string_value(v);

    if (alg == NULL || (v != NULL && kid == NULL)
        || json_object_get(hdr, "crit") != NULL)
    {
        json_decref(hdr);
        return mst_err(err, errlen, MST_EDENIED, "bad header (alg, kid or "
                       "crit)");
    }

    type = (strcmp(alg, "HS256") == 0) ? MST_JWT_HS
           : (strcmp(alg, "RS256") == 0) ? MST_JWT_RS
           : (strcmp(alg, "ES256") == 0) ? MST_JWT_ES : 0;

    if (type == 0) {
        json_decref(hdr);
        return mst_err(err, errlen, MST_EDENIED, "alg must be HS256, RS256 "
                       "or ES256");
    }

    snprintf(out->alg, sizeof(out->alg), "%s", alg);

    if (kid != NULL) {
        if (strlen(kid) > MST_JWT_KID_MAX) {
            json_decref(hdr);
            return mst_err(err, errlen, MST_EDENIED, "unknown kid");
        }

        snprintf(out->kid, sizeof(out->kid), "%s", kid);
        kid = out->kid;
    }

    alg = out->alg;
    json_decref(hdr);

    if (mst_jwt_b64(d2 + 1, token + len - d2 - 1, &sig, &slen) != 0) {
        return mst_err(err, errlen, MST_EDENIED, "bad signature encoding");
    }

    ok = 0;
    tried = 0;

    for (i = 0; i < k->n && !ok; i++) {
        if (kid != NULL ? strcmp(k->key[i].kid, kid) != 0
                        : k->key[i].kid[0] != '\0')
        {
            continue;
        }

        if (k->key[i].type != type) {
            if (kid != NULL) {
                break;      /* the kid's key is of another type */
            }
            continue;
        }

        tried = 1;
        ok = (type == MST_JWT_HS)
             ? mst_jwt_hs(&k->key[i], token, d2 - token, sig, slen)
             : mst_jwt_pk(&k->key[i], token, d2 - token, sig, slen);
    }

    free(sig);

    if (!tried) {
        return mst_err(err, errlen, MST_EDENIED, kid != NULL
                       ? "no %s key with this kid" : "no %s key", alg);
    }

    if (!ok) {
        return mst_err(err, errlen, MST_EDENIED, "bad signature");
    }

    claims = mst_jwt_segment(d1 + 1, d2 - d1 - 1);
    if (claims == NULL) {
        return mst_err(err, errlen, MST_EDENIED, "the claims are not a JSON "
                       "object");
    }

    rc = mst_jwt_claims(p, claims, now_s, out, err, errlen);
    json_decref(claims);

    return rc;
}
