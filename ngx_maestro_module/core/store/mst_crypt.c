/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN (the contract and the record format are in mst_crypt.h)
 *
 * - The cipher is fetched once (EVP_CIPHER_fetch) when the ring is made:
 *   OpenSSL 3 would otherwise look "AES-256-GCM" up again, under a lock,
 *   on every seal of every pool thread.
 *
 * - A context per call (EVP_CIPHER_CTX_new/free) rather than one per
 *   thread: the ring is shared by the event loop and every pool thread,
 *   and a context costs far less than the LMDB write it goes with.
 *
 * - The ring maps an id to its slot with a 256-entry table, so opening a
 *   record finds its key in one step whatever the ring holds.
 *
 * - Nonces: RAND_bytes() costs more than sealing a small record (it asks
 *   the kernel for the pid on every call, to notice a fork), so each
 *   thread draws MST_CRYPT_NONCE_BATCH nonces at a time from it and uses
 *   each once. A fork must not let parent and child use the same ones:
 *   a pthread_atfork() child handler bumps a counter, and a thread whose
 *   batch was drawn before the last fork throws the batch away.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "mst_crypt.h"


#define MST_CRYPT_FILE_MAX     256  /* a key file is 32 or 64 + space */
#define MST_CRYPT_NONCE_BATCH  32


typedef struct {
    unsigned        id;
    unsigned char   key[MST_CRYPT_KEY_LEN];
} mst_crypt_key_t;


struct mst_crypt_s {
    EVP_CIPHER       *cipher;
    mst_crypt_key_t   keys[MST_CRYPT_MAX_KEYS];
    unsigned          nkeys;
    int               active;       /* slot, -1: none */
    unsigned char     slot[256];    /* id -> slot + 1, 0: unknown */
};


static int mst_crypt_hex(int c);
static int mst_crypt_nonce(unsigned char *nonce);
static void mst_crypt_atfork(void);
static void mst_crypt_forked(void);


/* every thread's batch of nonces, and the fork it was drawn after */
static __thread unsigned char  mst_crypt_nonces[MST_CRYPT_NONCE_BATCH
                                                * MST_CRYPT_NONCE_LEN];
static __thread unsigned       mst_crypt_nonces_left;
static __thread unsigned       mst_crypt_nonces_fork;

static unsigned                mst_crypt_forks;
static pthread_once_t          mst_crypt_once = PTHREAD_ONCE_INIT;


mst_crypt_t *
mst_crypt_create(char *err, size_t errlen)
{
    mst_crypt_t  *c;

    if (pthread_once(&mst_crypt_once, mst_crypt_atfork) != 0) {
        mst_err(err, errlen, MST_ERROR, "pthread_once() failed");
        return NULL;
    }

    c = calloc(1, sizeof(mst_crypt_t));
    if (c == NULL) {
        mst_err(err, errlen, MST_ENOMEM, "cannot allocate the key ring");
        return NULL;
    }

    c->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (c->cipher == NULL) {
        free(c);
        mst_err(err, errlen, MST_ERROR,
                "AES-256-GCM is not available in libcrypto");
        return NULL;
    }

    c->active = -1;

    return c;
}


void
mst_crypt_free(mst_crypt_t *c)
{
    if (c == NULL) {
        return;
    }

    EVP_CIPHER_free(c->cipher);
    OPENSSL_cleanse(c, sizeof(mst_crypt_t));
    free(c);
}


int
mst_crypt_add_key(mst_crypt_t *c, unsigned id, const unsigned char *key,
    int active, char *err, size_t errlen)
{
    mst_crypt_key_t  *k;

    if (id < 1 || id > 255) {
        return mst_err(err, errlen, MST_EINVAL,
                       "key id %u is not in 1..255", id);
    }

    if (c->slot[id] != 0) {
        return mst_err(err, errlen, MST_EXISTS,
                       "duplicate key id %u", id);
    }

    if (c->nkeys == MST_CRYPT_MAX_KEYS) {
        return mst_err(err, errlen, MST_EINVAL,
                       "more than %d keys", MST_CRYPT_MAX_KEYS);
    }

    if (active && c->active >= 0) {
        return mst_err(err, errlen, MST_EINVAL,
                       "key id %u is active and so is key id %u: "
                       "only one key can be active",
                       id, c->keys[c->active].id);
    }

    k = &c->keys[c->nkeys];
    k->id = id;
    memcpy(k->key, key, MST_CRYPT_KEY_LEN);

    if (active) {
        c->active = (int) c->nkeys;
    }

    c->nkeys++;
    c->slot[id] = (unsigned char) c->nkeys;

    return MST_OK;
}


int
mst_crypt_ready(const mst_crypt_t *c)
{
    return c != NULL && c->active >= 0;
}


unsigned
mst_crypt_active_id(const mst_crypt_t *c)
{
    return mst_crypt_ready(c) ? c->keys[c->active].id : 0;
}


int
mst_crypt_key_parse(const char *text, size_t len, int raw,
    unsigned char *key, char *err, size_t errlen)
{
    int     hi, lo;
    size_t  i, n;

    n = len;

    /* "openssl rand -hex 32 > file" leaves a newline */
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'
                     || text[n - 1] == ' ' || text[n - 1] == '\t'))
    {
        n--;
    }

    if (n == 2 * MST_CRYPT_KEY_LEN) {

        for (i = 0; i < MST_CRYPT_KEY_LEN; i++) {
            hi = mst_crypt_hex((unsigned char) text[2 * i]);
            lo = mst_crypt_hex((unsigned char) text[2 * i + 1]);

            if (hi < 0 || lo < 0) {
                break;
            }

            key[i] = (unsigned char) (hi << 4 | lo);
        }

        if (i == MST_CRYPT_KEY_LEN) {
            return MST_OK;
        }

        OPENSSL_cleanse(key, MST_CRYPT_KEY_LEN);

        return mst_err(err, errlen, MST_EINVAL,
                       "the key is not 64 hex digits (a character at "
                       "offset %zu or %zu is not a hex digit)",
                       2 * i, 2 * i + 1);
    }

    if (raw && len == MST_CRYPT_KEY_LEN) {
        memcpy(key, text, MST_CRYPT_KEY_LEN);
        return MST_OK;
    }

    return mst_err(err, errlen, MST_EINVAL,
                   raw ? "the key must be 32 bytes, or 64 hex digits, "
                         "not %zu bytes"
                       : "the key must be 64 hex digits, not %zu "
                         "characters",
                   raw ? len : n);
}


int
mst_crypt_key_file(const char *path, unsigned char *key, char *err,
    size_t errlen)
{
    int          fd, rc;
    char         buf[MST_CRYPT_FILE_MAX + 1], msg[MST_ERRLEN];
    ssize_t      n;
    size_t       len;
    struct stat  st;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return mst_err(err, errlen, MST_EINVAL,
                       "cannot open key file \"%s\": %s",
                       path, strerror(errno));
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mst_err(err, errlen, MST_EINVAL,
                       "key file \"%s\" is not a regular file", path);
    }

    len = 0;

    for ( ;; ) {
        n = read(fd, buf + len, sizeof(buf) - len);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        len += (size_t) n;

        if (len == sizeof(buf)) {
            break;
        }
    }

    rc = errno;
    close(fd);

    if (n == -1) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return mst_err(err, errlen, MST_EIO,
                       "cannot read key file \"%s\": %s",
                       path, strerror(rc));
    }

    if (len > MST_CRYPT_FILE_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return mst_err(err, errlen, MST_EINVAL,
                       "key file \"%s\" is longer than a key", path);
    }

    rc = mst_crypt_key_parse(buf, len, 1, key, msg, sizeof(msg));
    OPENSSL_cleanse(buf, sizeof(buf));

    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "key file \"%s\": %s", path, msg);
    }

    return MST_OK;
}


int
mst_crypt_key_env(const char *name, unsigned char *key, char *err,
    size_t errlen)
{
    int          rc;
    char         msg[MST_ERRLEN];
    const char  *v;

    v = getenv(name);

    if (v == NULL || v[0] == '\0') {
        return mst_err(err, errlen, MST_EINVAL,
                       "environment variable \"%s\" is not set", name);
    }

    rc = mst_crypt_key_parse(v, strlen(v), 0, key, msg, sizeof(msg));

    if (rc != MST_OK) {
        return mst_err(err, errlen, rc, "environment variable \"%s\": %s",
                       name, msg);
    }

    return MST_OK;
}


int
mst_crypt_is_sealed(const void *p, size_t len)
{
    return len > 0 && *(const unsigned char *) p == MST_CRYPT_MAGIC;
}


int
mst_crypt_seal(const mst_crypt_t *c, const void *aad, size_t alen,
    const mst_crypt_iov_t *iov, size_t n, unsigned char *out, char *err,
    size_t errlen)
{
    int                     ok, len;
    size_t                  i;
    unsigned char          *p;
    EVP_CIPHER_CTX         *ctx;
    const mst_crypt_key_t  *k;

    if (!mst_crypt_ready(c)) {
        return mst_err(err, errlen, MST_ECRYPT, "no active key to seal with");
    }

    k = &c->keys[c->active];

    out[0] = MST_CRYPT_MAGIC;
    out[1] = MST_CRYPT_VERSION;
    out[2] = (unsigned char) k->id;

    if (mst_crypt_nonce(out + 3) != MST_OK) {
        return mst_err(err, errlen, MST_ECRYPT, "RAND_bytes() failed");
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "EVP_CIPHER_CTX_new() failed");
    }

    /* the default GCM IV length is 12 bytes: MST_CRYPT_NONCE_LEN */

    ok = EVP_EncryptInit_ex2(ctx, c->cipher, k->key, out + 3, NULL) == 1;

    if (ok && alen > 0) {
        ok = EVP_EncryptUpdate(ctx, NULL, &len, aad, (int) alen) == 1;
    }

    p = out + MST_CRYPT_HEAD_LEN;

    for (i = 0; ok && i < n; i++) {
        if (iov[i].len == 0) {
            continue;
        }

        ok = EVP_EncryptUpdate(ctx, p, &len, iov[i].data, (int) iov[i].len)
             == 1;
        p += len;
    }

    if (ok) {
        ok = EVP_EncryptFinal_ex(ctx, p, &len) == 1;
        p += len;
    }

    if (ok) {
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MST_CRYPT_TAG_LEN,
                                 p) == 1;
    }

    EVP_CIPHER_CTX_free(ctx);

    if (!ok) {
        return mst_err(err, errlen, MST_ECRYPT, "AES-256-GCM seal failed");
    }

    return MST_OK;
}


int
mst_crypt_open(const mst_crypt_t *c, const void *aad, size_t alen,
    const unsigned char *in, size_t len, unsigned char *out, size_t *outlen,
    char *err, size_t errlen)
{
    int                     ok, n;
    size_t                  plen;
    unsigned                slot;
    EVP_CIPHER_CTX         *ctx;
    const mst_crypt_key_t  *k;

    if (len < MST_CRYPT_OVERHEAD || in[0] != MST_CRYPT_MAGIC) {
        return mst_err(err, errlen, MST_ECRYPT,
                       "sealed record is truncated (%zu bytes)", len);
    }

    if (in[1] != MST_CRYPT_VERSION) {
        return mst_err(err, errlen, MST_ECRYPT,
                       "sealed record has unknown version %u", in[1]);
    }

    slot = (c != NULL) ? c->slot[in[2]] : 0;

    if (slot == 0) {
        return mst_err(err, errlen, MST_ECRYPT,
                       "record sealed with key id %u, which is not "
                       "configured (maestro_store_encryption_key)", in[2]);
    }

    k = &c->keys[slot - 1];
    plen = len - MST_CRYPT_OVERHEAD;

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "EVP_CIPHER_CTX_new() failed");
    }

    ok = EVP_DecryptInit_ex2(ctx, c->cipher, k->key, in + 3, NULL) == 1;

    if (ok && alen > 0) {
        ok = EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) alen) == 1;
    }

    n = 0;

    if (ok && plen > 0) {
        ok = EVP_DecryptUpdate(ctx, out, &n, in + MST_CRYPT_HEAD_LEN,
                               (int) plen) == 1;
    }

    if (ok) {
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MST_CRYPT_TAG_LEN,
                                 (void *) (in + len - MST_CRYPT_TAG_LEN))
             == 1;
    }

    /* the tag is checked here: nothing above may be used before it */

    if (ok) {
        ok = EVP_DecryptFinal_ex(ctx, out + n, &n) == 1;
    }

    EVP_CIPHER_CTX_free(ctx);

    if (!ok) {
        OPENSSL_cleanse(out, plen);
        return mst_err(err, errlen, MST_ECRYPT,
                       "sealed record fails authentication with key id %u "
                       "(altered, or stored under another key)", in[2]);
    }

    *outlen = plen;

    return MST_OK;
}


/* a fresh nonce from this thread's batch (RAND_bytes) */

static int
mst_crypt_nonce(unsigned char *nonce)
{
    unsigned  forks;

    forks = __atomic_load_n(&mst_crypt_forks, __ATOMIC_ACQUIRE);

    if (mst_crypt_nonces_left == 0 || mst_crypt_nonces_fork != forks) {

        if (RAND_bytes(mst_crypt_nonces, sizeof(mst_crypt_nonces)) != 1) {
            mst_crypt_nonces_left = 0;
            return MST_ECRYPT;
        }

        mst_crypt_nonces_left = MST_CRYPT_NONCE_BATCH;
        mst_crypt_nonces_fork = forks;
    }

    mst_crypt_nonces_left--;

    memcpy(nonce, mst_crypt_nonces
                  + mst_crypt_nonces_left * MST_CRYPT_NONCE_LEN,
           MST_CRYPT_NONCE_LEN);

    /* used: never handed out again, also not by a later fork */
    memset(mst_crypt_nonces + mst_crypt_nonces_left * MST_CRYPT_NONCE_LEN,
           0, MST_CRYPT_NONCE_LEN);

    return MST_OK;
}


static void
mst_crypt_atfork(void)
{
    (void) pthread_atfork(NULL, NULL, mst_crypt_forked);
}


/* runs in the child of a fork */
static void
mst_crypt_forked(void)
{
    __atomic_add_fetch(&mst_crypt_forks, 1, __ATOMIC_RELEASE);
}


static int
mst_crypt_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}
