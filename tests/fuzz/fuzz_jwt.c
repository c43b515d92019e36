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
#include <openssl/pem.h>

#include "mst_jwt.h"


static mst_jwt_keys_t  *fuzz_keys;


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
                                (const unsigned char *) "fuzz-secret-of-"
                                "at-least-32-bytes!!", 34, NULL, err,
                                sizeof(err))
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
    int               rc;
    char              err[MST_ERRLEN];
    mst_jwt_claims_t  c;
    mst_jwt_policy_t  p = { "idp", "maestro", NULL, 60, 1 };

    rc = mst_jwt_verify(fuzz_keys, &p, (const char *) data, size,
                        1700000000, &c, err, sizeof(err));

    if (rc == MST_OK || (rc == MST_EDENIED && c.sub[0] != '\0')) {
        abort();
    }

    (void) mst_jwt_looks_like((const char *) data, size);

    return 0;
}
