/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * JWT bearer tokens (RFC 7519, compact JWS of RFC 7515): HS256, RS256 and
 * ES256 through libcrypto's EVP interface, nothing else. A key has a
 * type and a token's "alg" picks the type: an HS256 token is checked
 * against shared secrets only, RS256 against RSA keys, ES256 against
 * P-256 keys. So a public key can never serve as an HMAC secret (the
 * HS/RS confusion attack) and "none" matches no key at all.
 *
 * A token with "kid" is checked against the key with that id only; an
 * unknown kid is refused (no fallback to other keys, which would make
 * kid meaningless for rotation). A token without kid is tried against
 * the keys of its type that have no kid either.
 *
 * Claims: exp (required by policy), nbf and iat (not in the future)
 * with a leeway; iss and aud when the policy names them ("aud" may be a
 * string or an array); "sub" is the user, a configured claim the team.
 * Every refusal says why in words that are safe to log: never the
 * token, a signature or key bytes.
 */

#ifndef _MST_JWT_H_INCLUDED_
#define _MST_JWT_H_INCLUDED_

#include "mst_common.h"

#define MST_JWT_TOKEN_MAX  8192     /* bytes of a token */
#define MST_JWT_KID_MAX    64

typedef struct mst_jwt_keys_s  mst_jwt_keys_t;

typedef struct {
    const char  *issuer;        /* NULL: not checked */
    const char  *audience;      /* NULL: not checked */
    const char  *team_claim;    /* NULL: "team" */
    int64_t      leeway_s;
    int          require_exp;
} mst_jwt_policy_t;

typedef struct {
    char         sub[129];
    char         team[129];     /* "" when absent */
    char         kid[MST_JWT_KID_MAX + 1];
    char         alg[8];
    int64_t      exp;           /* 0 when absent */
} mst_jwt_claims_t;

mst_jwt_keys_t *mst_jwt_keys_new(void);
void mst_jwt_keys_free(mst_jwt_keys_t *k);

/* the number of keys loaded */
size_t mst_jwt_keys_count(const mst_jwt_keys_t *k);

/*
 * A file: a PEM public key (RSA or EC P-256) with the given kid (NULL:
 * none), or a JWKS JSON file ({"keys": [...]}, kty RSA, EC P-256 or oct;
 * each key's own kid, kid must be NULL).
 */
int mst_jwt_keys_load_file(mst_jwt_keys_t *k, const char *path,
    const char *kid, char *err, size_t errlen);

/* an HS256 shared secret (at least 32 bytes), kid may be NULL */
int mst_jwt_keys_add_secret(mst_jwt_keys_t *k, const unsigned char *secret,
    size_t len, const char *kid, char *err, size_t errlen);

/*
 * MST_OK and *out; MST_EDENIED with why in err; MST_EINVAL for bad
 * arguments. now_s: seconds since the epoch.
 */
int mst_jwt_verify(const mst_jwt_keys_t *k, const mst_jwt_policy_t *p,
    const char *token, size_t len, int64_t now_s, mst_jwt_claims_t *out,
    char *err, size_t errlen);

/* three non-empty base64url segments joined by dots */
int mst_jwt_looks_like(const char *token, size_t len);

#endif /* _MST_JWT_H_INCLUDED_ */
