/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_apikey.h */

#include <pthread.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "mst_apikey.h"


#define MST_APIKEY_NAME_MAX  128    /* name, user_id, team, list items */


static const char  mst_apikey_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char  mst_apikey_hex[] = "0123456789abcdef";


static void
mst_apikey_tohex(char *dst, const unsigned char *src, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        dst[2 * i] = mst_apikey_hex[src[i] >> 4];
        dst[2 * i + 1] = mst_apikey_hex[src[i] & 0x0f];
    }

    dst[2 * n] = '\0';
}


/* SHA-256 fetched once: an implicit fetch per digest costs more than
   hashing a token */
static EVP_MD          *mst_apikey_md;
static pthread_once_t   mst_apikey_md_once = PTHREAD_ONCE_INIT;


static void
mst_apikey_md_init(void)
{
    mst_apikey_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}


int
mst_sha256(const void *data, size_t len, unsigned char *out)
{
    unsigned int  n;

    (void) pthread_once(&mst_apikey_md_once, mst_apikey_md_init);

    if (mst_apikey_md == NULL
        || EVP_Digest(data, len, out, &n, mst_apikey_md, NULL) != 1
        || n != 32)
    {
        return MST_ERROR;
    }

    return MST_OK;
}


static int
mst_apikey_sha256(const char *data, size_t len, char *hex)
{
    unsigned char  md[32];

    if (mst_sha256(data, len, md) != MST_OK) {
        return MST_ERROR;
    }

    mst_apikey_tohex(hex, md, 32);

    return MST_OK;
}


/* the secret part of s->token from 32 random bytes, then its hash */
static int
mst_apikey_secret(mst_apikey_secret_t *s, char *p)
{
    size_t         i, bits, n;
    uint32_t       acc;
    unsigned char  raw[32];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return MST_ERROR;
    }

    /* base64url without padding: 32 bytes -> 43 characters */

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < sizeof(raw); i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;

        while (bits >= 6) {
            bits -= 6;
            p[n++] = mst_apikey_b64[(acc >> bits) & 0x3f];
        }
    }

    if (bits > 0) {
        p[n++] = mst_apikey_b64[(acc << (6 - bits)) & 0x3f];
    }

    p[n] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));

    return mst_apikey_sha256(p, n, s->hash);
}


int
mst_apikey_generate(mst_apikey_secret_t *s)
{
    unsigned char  raw[MST_APIKEY_ID_HEX / 2];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return MST_ERROR;
    }

    memcpy(s->id, "key_", 4);
    mst_apikey_tohex(s->id + 4, raw, sizeof(raw));

    return mst_apikey_regenerate(s, s->id);
}


int
mst_apikey_regenerate(mst_apikey_secret_t *s, const char *id)
{
    if (strlen(id) != MST_APIKEY_ID_LEN || strncmp(id, "key_", 4) != 0) {
        return MST_EINVAL;
    }

    if (s->id != id) {
        memcpy(s->id, id, MST_APIKEY_ID_LEN + 1);
    }

    memcpy(s->token, "mk_", 3);
    memcpy(s->token + 3, id + 4, MST_APIKEY_ID_HEX);
    s->token[3 + MST_APIKEY_ID_HEX] = '_';

    return mst_apikey_secret(s, s->token + 3 + MST_APIKEY_ID_HEX + 1);
}


int
mst_apikey_looks_like(const char *token, size_t len)
{
    size_t  i;

    if (len != MST_APIKEY_TOKEN_LEN || strncmp(token, "mk_", 3) != 0
        || token[3 + MST_APIKEY_ID_HEX] != '_')
    {
        return 0;
    }

    for (i = 3; i < 3 + MST_APIKEY_ID_HEX; i++) {
        if (!((token[i] >= '0' && token[i] <= '9')
              || (token[i] >= 'a' && token[i] <= 'f')))
        {
            return 0;
        }
    }

    for (i = 4 + MST_APIKEY_ID_HEX; i < len; i++) {
        if (strchr(mst_apikey_b64, token[i]) == NULL || token[i] == '\0') {
            return 0;
        }
    }

    return 1;
}


int
mst_apikey_parse(const char *token, size_t len, char *id, char *hash)
{
    if (!mst_apikey_looks_like(token, len)) {
        return MST_EINVAL;
    }

    memcpy(id, "key_", 4);
    memcpy(id + 4, token + 3, MST_APIKEY_ID_HEX);
    id[MST_APIKEY_ID_LEN] = '\0';

    return mst_apikey_sha256(token + 4 + MST_APIKEY_ID_HEX,
                             MST_APIKEY_SECRET_LEN, hash);
}


/* stored hash h equals hash, in constant time */
static int
mst_apikey_same(const json_t *h, const char *hash)
{
    if (!json_is_string(h) || json_string_length(h) != MST_APIKEY_HASH_HEX) {
        return 0;
    }

    return CRYPTO_memcmp(json_string_value(h), hash, MST_APIKEY_HASH_HEX)
           == 0;
}


static int64_t
mst_apikey_ms(const json_t *rec, const char *field)
{
    json_t  *v;

    v = json_object_get(rec, field);

    return json_is_integer(v) ? (int64_t) json_integer_value(v) : 0;
}


int
mst_apikey_valid(const json_t *rec, int64_t now_ms, char *why,
    size_t whylen)
{
    int64_t  expires;

    if (mst_apikey_ms(rec, "revoked_at") != 0) {
        return mst_err(why, whylen, MST_EDENIED, "revoked");
    }

    expires = mst_apikey_ms(rec, "expires_at");

    if (expires != 0 && now_ms >= expires) {
        return mst_err(why, whylen, MST_EDENIED, "expired");
    }

    return MST_OK;
}


int
mst_apikey_check(const json_t *rec, const char *hash, int64_t now_ms,
    char *why, size_t whylen)
{
    int  cur, old;

    /* both compared whatever the first says: no timing difference */

    cur = mst_apikey_same(json_object_get(rec, "hash"), hash);
    old = mst_apikey_same(json_object_get(rec, "grace_hash"), hash)
          && now_ms < mst_apikey_ms(rec, "grace_until");

    if (!cur && !old) {
        return mst_err(why, whylen, MST_EDENIED, "wrong secret");
    }

    return mst_apikey_valid(rec, now_ms, why, whylen);
}


/* a string field of 1..MST_APIKEY_NAME_MAX bytes without NUL */
static int
mst_apikey_name_ok(const json_t *v)
{
    size_t  len;

    if (!json_is_string(v)) {
        return 0;
    }

    len = json_string_length(v);

    return len > 0 && len <= MST_APIKEY_NAME_MAX
           && memchr(json_string_value(v), '\0', len) == NULL;
}


static int
mst_apikey_list_ok(const json_t *v)
{
    size_t   i;
    json_t  *item;

    if (json_is_null(v)) {
        return 1;
    }

    if (!json_is_array(v) || json_array_size(v) > MST_APIKEY_LIST_MAX) {
        return 0;
    }

    json_array_foreach(v, i, item) {
        if (!mst_apikey_name_ok(item)) {
            return 0;
        }
    }

    return 1;
}


static int
mst_apikey_limits_ok(const json_t *v)
{
    json_t      *n;
    const char  *k;

    if (json_is_null(v)) {
        return 1;
    }

    if (!json_is_object(v)) {
        return 0;
    }

    json_object_foreach((json_t *) v, k, n) {
        if ((strcmp(k, "rpm") != 0 && strcmp(k, "tpm") != 0
             && strcmp(k, "tpd") != 0 && strcmp(k, "max_parallel") != 0)
            || !json_is_integer(n) || json_integer_value(n) < 0)
        {
            return 0;
        }
    }

    return 1;
}


/* a field of the request, or null (a singleton: no reference to keep) */
static json_t *
mst_apikey_or_null(const json_t *req, const char *field)
{
    json_t  *v;

    v = json_object_get(req, field);

    return v != NULL ? v : json_null();
}


int
mst_apikey_create(const json_t *req, const mst_apikey_secret_t *s,
    int64_t now_ms, json_t **rec, char *err, size_t errlen)
{
    json_t      *v, *r;
    int64_t      expires;
    const char  *k, *bad, *period;

    *rec = NULL;

    if (!json_is_object(req)) {
        return mst_err(err, errlen, MST_EINVAL, "the body must be a JSON "
                       "object");
    }

    if (!mst_apikey_name_ok(json_object_get(req, "user_id"))) {
        return mst_err(err, errlen, MST_EINVAL, "user_id: a string of "
                       "1..%d characters is required", MST_APIKEY_NAME_MAX);
    }

    expires = 0;
    bad = NULL;

    json_object_foreach((json_t *) req, k, v) {
        if (strcmp(k, "user_id") == 0) {
            continue;

        } else if (strcmp(k, "name") == 0 || strcmp(k, "team") == 0) {
            if (!json_is_null(v) && !mst_apikey_name_ok(v)) {
                bad = "a string of 1..128 characters";
            }

        } else if (strcmp(k, "workflows") == 0 || strcmp(k, "models") == 0) {
            if (!mst_apikey_list_ok(v)) {
                bad = "null or an array of up to 100 names";
            }

        } else if (strcmp(k, "limits") == 0) {
            if (!mst_apikey_limits_ok(v)) {
                bad = "an object of rpm, tpm, tpd, max_parallel (integers "
                      ">= 0)";
            }

        } else if (strcmp(k, "budget_usd") == 0) {
            if (!json_is_null(v)
                && (!json_is_number(v) || json_number_value(v) < 0))
            {
                bad = "a number >= 0";
            }

        } else if (strcmp(k, "budget_period") == 0) {
            if (!json_is_string(v)
                || (strcmp(json_string_value(v), "day") != 0
                    && strcmp(json_string_value(v), "month") != 0
                    && strcmp(json_string_value(v), "total") != 0))
            {
                bad = "\"day\", \"month\" or \"total\"";
            }

        } else if (strcmp(k, "expires_in") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1
                || json_integer_value(v) > 10LL * 365 * 86400)
            {
                bad = "seconds, 1..315360000";

            } else {
                expires = now_ms + json_integer_value(v) * 1000;
            }

        } else {
            bad = "not a field of a key";
        }

        if (bad != NULL) {
            return mst_err(err, errlen, MST_EINVAL, "%s: %s", k, bad);
        }
    }

    v = json_object_get(req, "budget_period");
    period = json_is_string(v) ? json_string_value(v) : "month";

    r = json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:s, s:o,"
                  " s:I, s:n, s:n, s:n, s:s, s:n, s:n}",
                  "id", s->id,
                  "name", mst_apikey_or_null(req, "name"),
                  "user_id", json_object_get(req, "user_id"),
                  "team", mst_apikey_or_null(req, "team"),
                  "workflows", mst_apikey_or_null(req, "workflows"),
                  "models", mst_apikey_or_null(req, "models"),
                  "limits", mst_apikey_or_null(req, "limits"),
                  "budget_usd", mst_apikey_or_null(req, "budget_usd"),
                  "budget_period", period,
                  "expires_at", expires ? json_integer(expires)
                                        : json_null(),
                  "created_at", (json_int_t) now_ms,
                  "last_used_at", "revoked_at", "rotated_at",
                  "hash", s->hash, "grace_hash", "grace_until");
    if (r == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    *rec = r;

    return MST_OK;
}


int
mst_apikey_rotate(json_t *rec, const mst_apikey_secret_t *s,
    int64_t now_ms, int64_t grace_ms, char *err, size_t errlen)
{
    json_t  *old;

    if (mst_apikey_ms(rec, "revoked_at") != 0) {
        return mst_err(err, errlen, MST_EXISTS, "the key was revoked");
    }

    if (grace_ms < 0 || grace_ms > MST_APIKEY_GRACE_MAX) {
        return mst_err(err, errlen, MST_EINVAL, "grace_seconds: 0..%lld",
                       (long long) (MST_APIKEY_GRACE_MAX / 1000));
    }

    old = json_object_get(rec, "hash");

    if (grace_ms > 0 && json_is_string(old)) {
        json_object_set(rec, "grace_hash", old);
        json_object_set_new(rec, "grace_until",
                            json_integer(now_ms + grace_ms));

    } else {
        json_object_set_new(rec, "grace_hash", json_null());
        json_object_set_new(rec, "grace_until", json_null());
    }

    json_object_set_new(rec, "hash", json_string(s->hash));
    json_object_set_new(rec, "rotated_at", json_integer(now_ms));

    return MST_OK;
}


int
mst_apikey_revoke(json_t *rec, int64_t now_ms)
{
    if (mst_apikey_ms(rec, "revoked_at") != 0) {
        return MST_EXISTS;
    }

    json_object_set_new(rec, "revoked_at", json_integer(now_ms));

    /* a revoked key has no secret left to try */
    json_object_set_new(rec, "grace_hash", json_null());
    json_object_set_new(rec, "grace_until", json_null());

    return MST_OK;
}


json_t *
mst_apikey_view(const json_t *rec, int64_t now_ms)
{
    json_t      *v;
    int64_t      expires;
    const char  *status;

    v = json_deep_copy(rec);
    if (v == NULL) {
        return NULL;
    }

    json_object_del(v, "hash");
    json_object_del(v, "grace_hash");

    expires = mst_apikey_ms(rec, "expires_at");

    if (mst_apikey_ms(rec, "revoked_at") != 0) {
        status = "revoked";

    } else if (expires != 0 && now_ms >= expires) {
        status = "expired";

    } else {
        status = "active";
    }

    json_object_set_new(v, "status", json_string(status));

    return v;
}


int
mst_apikey_allows(const json_t *rec, const char *field, const char *name)
{
    size_t   i;
    json_t  *list, *item;

    list = json_object_get(rec, field);

    if (!json_is_array(list)) {
        return 1;
    }

    json_array_foreach(list, i, item) {
        if (json_is_string(item)
            && strcmp(json_string_value(item), name) == 0)
        {
            return 1;
        }
    }

    return 0;
}
