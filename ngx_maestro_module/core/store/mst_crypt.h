/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * mst_crypt seals the store's values at rest: AES-256-GCM (OpenSSL EVP)
 * under a key ring of up to MST_CRYPT_MAX_KEYS keys, each named by an id
 * of 1..255, one of them active (the one new records are sealed with);
 * the others still open what they sealed, so a key is rotated by adding
 * a new active one and keeping the old ones until nothing uses them.
 *
 * A sealed record:
 *
 *   0xFF  version(1)  key id(1)  nonce(12, RAND_bytes)  ciphertext  tag(16)
 *
 * The caller's AAD (the store passes the record kind and its LMDB key) is
 * authenticated with it, so a sealed value copied under another key, or
 * into another sub-database, fails to open like a changed byte does.
 * 0xFF cannot start JSON text or an event name (it is never UTF-8), so a
 * record written before sealing was turned on is told apart by its first
 * byte and still read as it is (mst_crypt_is_sealed()).
 *
 * Open never returns unauthenticated bytes: an unknown key id, a short
 * record, another version or a failed tag is MST_ECRYPT with a message,
 * and the output buffer is wiped.
 *
 * Keys: 32 bytes, read from a file (32 raw bytes, or 64 hex digits with
 * optional trailing white space) or from an environment variable (64 hex
 * digits). No message ever holds key bytes; mst_crypt_free() wipes them
 * with OPENSSL_cleanse().
 *
 * Threads: a ring is built once (configuration) and only read after;
 * seal and open use a cipher context of their own per call, so any
 * thread may call them at the same time.
 */

#ifndef _MST_CRYPT_H_INCLUDED_
#define _MST_CRYPT_H_INCLUDED_

#include "mst_common.h"


#define MST_CRYPT_MAGIC       0xFF
#define MST_CRYPT_VERSION     1
#define MST_CRYPT_KEY_LEN     32
#define MST_CRYPT_NONCE_LEN   12
#define MST_CRYPT_TAG_LEN     16
#define MST_CRYPT_HEAD_LEN    (3 + MST_CRYPT_NONCE_LEN)
#define MST_CRYPT_OVERHEAD    (MST_CRYPT_HEAD_LEN + MST_CRYPT_TAG_LEN)
#define MST_CRYPT_MAX_KEYS    16


typedef struct mst_crypt_s  mst_crypt_t;

/* a piece of the plain text to seal (the store seals name '\0' text) */
typedef struct {
    const void  *data;
    size_t       len;
} mst_crypt_iov_t;


/* an empty ring; NULL when out of memory or AES-256-GCM is unavailable */
mst_crypt_t *mst_crypt_create(char *err, size_t errlen);

/* wipes every key and frees the ring; NULL is fine */
void mst_crypt_free(mst_crypt_t *c);

/*
 * Adds a key (copied) under id 1..255; active makes it the key new
 * records are sealed with. MST_EXISTS for a duplicate id, MST_EINVAL for
 * a bad id, a second active key or a full ring.
 */
int mst_crypt_add_key(mst_crypt_t *c, unsigned id,
    const unsigned char *key, int active, char *err, size_t errlen);

/* whether the ring has an active key (it can seal) */
int mst_crypt_ready(const mst_crypt_t *c);

/* id of the active key, 0 when none */
unsigned mst_crypt_active_id(const mst_crypt_t *c);

/*
 * A key from text: 64 hex digits, or (raw != 0) exactly 32 bytes;
 * trailing white space after hex digits is ignored. The message names no
 * byte of the text.
 */
int mst_crypt_key_parse(const char *text, size_t len, int raw,
    unsigned char *key, char *err, size_t errlen);

/* a key from a file (32 raw bytes or 64 hex digits) */
int mst_crypt_key_file(const char *path, unsigned char *key, char *err,
    size_t errlen);

/* a key from an environment variable (64 hex digits) */
int mst_crypt_key_env(const char *name, unsigned char *key, char *err,
    size_t errlen);

/* whether the len bytes at p are a sealed record (by its first byte) */
int mst_crypt_is_sealed(const void *p, size_t len);

/*
 * Seals the n pieces of plain text with the active key into out, which
 * holds their total length + MST_CRYPT_OVERHEAD bytes.
 */
int mst_crypt_seal(const mst_crypt_t *c, const void *aad, size_t alen,
    const mst_crypt_iov_t *iov, size_t n, unsigned char *out, char *err,
    size_t errlen);

/*
 * Opens a sealed record of len bytes into out (len - MST_CRYPT_OVERHEAD
 * bytes); *outlen gets the plain length. MST_ECRYPT, with a message, when
 * it is short, of another version, sealed with a key the ring does not
 * have, or altered (tag or AAD); out is wiped then.
 */
int mst_crypt_open(const mst_crypt_t *c, const void *aad, size_t alen,
    const unsigned char *in, size_t len, unsigned char *out, size_t *outlen,
    char *err, size_t errlen);

#endif /* _MST_CRYPT_H_INCLUDED_ */
