/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Virtual API keys: what a key is, how its secret is made and checked,
 * and which fields a client may set. The store keeps the records
 * (mst_store_key.c); the admin API and the identify stage are glue.
 *
 * A key is "mk_" + 16 hex digits (the id, not secret) + "_" + 43
 * base64url characters (256 random bits, RAND_bytes). The id finds the
 * record without a scan; the record holds only SHA-256 of the secret.
 * A plain hash is enough because the secret is 256 random bits (no
 * dictionary to try, unlike a password), and it keeps the check at
 * about a microsecond on every request. Hashes are compared in constant
 * time (CRYPTO_memcmp).
 *
 * Rotation gives the key a new secret; the previous one keeps working
 * until "grace_until" (default MST_APIKEY_GRACE_MS, 0 to cut it at
 * once). Revocation sets "revoked_at": the record stays, so usage and
 * the audit log still name the key. Each request reads the record from
 * LMDB, so a revocation committed by one worker is seen by the next
 * request on every worker.
 *
 * Record (JSON):
 *   id, name, user_id, team, workflows, models (null: all), limits
 *   (rpm, tpm, tpd, max_parallel; null: none), budget_usd,
 *   budget_period ("day", "month", "total"), expires_at, created_at,
 *   last_used_at, revoked_at, rotated_at (ms or null),
 *   hash, grace_hash, grace_until (never shown)
 */

#ifndef _MST_APIKEY_H_INCLUDED_
#define _MST_APIKEY_H_INCLUDED_

#include "mst_common.h"

#define MST_APIKEY_ID_HEX      16
#define MST_APIKEY_ID_LEN      (4 + MST_APIKEY_ID_HEX)          /* key_... */
#define MST_APIKEY_SECRET_LEN  43                     /* 32 bytes, b64url */
#define MST_APIKEY_TOKEN_LEN   (3 + MST_APIKEY_ID_HEX + 1 \
                                + MST_APIKEY_SECRET_LEN)
#define MST_APIKEY_HASH_HEX    64
#define MST_APIKEY_GRACE_MS    (3600 * 1000)          /* rotation, default */
#define MST_APIKEY_GRACE_MAX   (7 * 86400 * 1000LL)
#define MST_APIKEY_LIST_MAX    100                    /* workflows, models */

/* a key's fresh secret: token (shown once), id and the hash to store */
typedef struct {
    char   token[MST_APIKEY_TOKEN_LEN + 1];
    char   id[MST_APIKEY_ID_LEN + 1];
    char   hash[MST_APIKEY_HASH_HEX + 1];
} mst_apikey_secret_t;

/* SHA-256 of data into out (32 bytes); MST_ERROR when libcrypto fails */
int mst_sha256(const void *data, size_t len, unsigned char *out);

/* a new random secret; MST_ERROR when the RNG fails */
int mst_apikey_generate(mst_apikey_secret_t *s);

/* a new secret for the key id (rotation) */
int mst_apikey_regenerate(mst_apikey_secret_t *s, const char *id);

/*
 * Splits a presented token: id (MST_APIKEY_ID_LEN + 1 bytes) and its
 * hash (MST_APIKEY_HASH_HEX + 1). MST_EINVAL: not a key's shape.
 */
int mst_apikey_parse(const char *token, size_t len, char *id, char *hash);

/* the token has a key's shape (tells a key from a JWT) */
int mst_apikey_looks_like(const char *token, size_t len);

/*
 * The key is neither revoked nor expired at now (ms): MST_OK; MST_EDENIED
 * with why ("revoked", "expired") otherwise.
 */
int mst_apikey_valid(const json_t *rec, int64_t now_ms, char *why,
    size_t whylen);

/*
 * The record admits the hash of a presented secret at now (ms): MST_OK;
 * MST_EDENIED with why ("revoked", "expired", "wrong secret") otherwise.
 */
int mst_apikey_check(const json_t *rec, const char *hash, int64_t now_ms,
    char *why, size_t whylen);

/*
 * A new record from a POST /api/v1/keys body (strict: an unknown field or
 * a wrong type is MST_EINVAL with err naming it), with the secret's id
 * and hash.
 */
int mst_apikey_create(const json_t *req, const mst_apikey_secret_t *s,
    int64_t now_ms, json_t **rec, char *err, size_t errlen);

/*
 * Rotation: rec gets s's hash; the old one works until now + grace_ms
 * (0: not at all). MST_EXISTS: the key was revoked; MST_EINVAL: grace_ms
 * out of 0..MST_APIKEY_GRACE_MAX.
 */
int mst_apikey_rotate(json_t *rec, const mst_apikey_secret_t *s,
    int64_t now_ms, int64_t grace_ms, char *err, size_t errlen);

/* revocation: MST_EXISTS when it was revoked already */
int mst_apikey_revoke(json_t *rec, int64_t now_ms);

/* the record as the API shows it: no hashes, a "status" */
json_t *mst_apikey_view(const json_t *rec, int64_t now_ms);

/* the key may use a workflow / a model (its list is null or names it) */
int mst_apikey_allows(const json_t *rec, const char *field,
    const char *name);

#endif /* _MST_APIKEY_H_INCLUDED_ */
