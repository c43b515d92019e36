/*
 * Copyright (C) Maestro authors
 */

/*
 * libFuzzer target for core/access/mst_jwt.c: a bearer token is untrusted
 * bytes from anyone who can connect. The input is a token checked against
 * a fixed key set (an HS256 secret, a P-256 key and a 2048-bit RSA key,
 * made once); besides "no crash, no overflow, no leak", a refused token
 * must leave no claims behind, and no input may pass (nothing here signs).
 *
 *   make fuzz                       (60 s each; FUZZ_SECONDS=N for longer)
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "mst_jwt.h"


#define FUZZ_SECRET  "fuzz-secret-of-at-least-32-bytes!!"


static mst_jwt_keys_t  *fuzz_keys;


static void
fuzz_b64(const unsigned char *in, size_t len, char *out)
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


static int
fuzz_verify(const char *tok, size_t len)
{
    int               rc;
    char              err[MST_ERRLEN];
    mst_jwt_claims_t  c;
    mst_jwt_policy_t  p = { "idp", "maestro", NULL, 60, 1 };

    rc = mst_jwt_verify(fuzz_keys, &p, tok, len, 1700000000, &c, err,
                        sizeof(err));

    if (rc == MST_OK && (c.sub[0] == '\0' || strlen(c.sub) > 128)) {
        abort();
    }

    if (rc != MST_OK && rc != MST_EDENIED) {
        abort();
    }

    (void) mst_jwt_looks_like(tok, len);

    return rc;
}


static void
fuzz_add_pkey(EVP_PKEY *key, const char *kid)
{
    char   path[] = "/tmp/fuzz_jwt_XXXXXX";
    char   err[MST_ERRLEN];
    int    fd;
    FILE  *f;

    fd = mkstemp(path);
    f = fdopen(fd, "w");
    PEM_write_PUBKEY(f, key);
    fclose(f);

    if (mst_jwt_keys_load_file(fuzz_keys, path, kid, err, sizeof(err))
        != MST_OK)
    {
        abort();
    }

    unlink(path);
    EVP_PKEY_free(key);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char  err[MST_ERRLEN];

    fuzz_keys = mst_jwt_keys_new();

    if (mst_jwt_keys_add_secret(fuzz_keys,
                                (const unsigned char *) FUZZ_SECRET,
                                strlen(FUZZ_SECRET), NULL, err, sizeof(err))
        != MST_OK)
    {
        abort();
    }

    fuzz_add_pkey(EVP_EC_gen("P-256"), "e1");
    fuzz_add_pkey(EVP_RSA_gen(2048), "r1");

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *tok;
    unsigned int    mlen;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    if (size > MST_JWT_TOKEN_MAX) {
        return 0;
    }

    /* exactly sized: ASan sees a read past the end */
    tok = malloc(size + 48);
    if (tok == NULL) {
        return 0;
    }

    memcpy(tok, data, size);

    /* nothing here is signed with a key of the set */
    if (fuzz_verify(tok, size) == MST_OK) {
        abort();
    }

    /* as "header.payload", signed with the set's secret */
    if (HMAC(EVP_sha256(), FUZZ_SECRET, (int) strlen(FUZZ_SECRET), data,
             size, mac, &mlen) != NULL)
    {
        tok[size] = '.';
        fuzz_b64(mac, mlen, tok + size + 1);
        (void) fuzz_verify(tok, size + 1 + strlen(tok + size + 1));
    }

    free(tok);

    return 0;
}
