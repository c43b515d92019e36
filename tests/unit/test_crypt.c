/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_crypt: AES-256-GCM sealing of store values */

#include <ctype.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "mst_test.h"
#include "mst_crypt.h"


static const char  *tc_plain = "{\"prompt\":\"the heron flies at noon\"}";
static const char  *tc_aad = "w" "wf_0000000000010000abcd";


static void
tc_key(unsigned char *key, unsigned char seed)
{
    unsigned  i;

    for (i = 0; i < MST_CRYPT_KEY_LEN; i++) {
        key[i] = (unsigned char) (seed + i * 7);
    }
}


/* a ring with the given ids (the first active) */
static mst_crypt_t *
tc_ring(const unsigned *ids, size_t n, unsigned active)
{
    char           err[MST_ERRLEN];
    size_t         i;
    mst_crypt_t   *c;
    unsigned char  key[MST_CRYPT_KEY_LEN];

    c = mst_crypt_create(err, sizeof(err));
    assert_non_null(c);

    for (i = 0; i < n; i++) {
        tc_key(key, (unsigned char) ids[i]);
        assert_int_equal(mst_crypt_add_key(c, ids[i], key, ids[i] == active,
                                           err, sizeof(err)),
                         MST_OK);
    }

    return c;
}


/* seals tc_plain; *len gets the sealed length; caller frees */
static unsigned char *
tc_seal(mst_crypt_t *c, const char *aad, size_t *len)
{
    char             err[MST_ERRLEN];
    unsigned char   *out;
    mst_crypt_iov_t  iov[2];

    /* two pieces, as the store seals name '\0' text */
    iov[0].data = tc_plain;
    iov[0].len = 5;
    iov[1].data = tc_plain + 5;
    iov[1].len = strlen(tc_plain) - 5;

    *len = strlen(tc_plain) + MST_CRYPT_OVERHEAD;

    out = malloc(*len);
    assert_non_null(out);

    assert_int_equal(mst_crypt_seal(c, aad, strlen(aad), iov, 2, out, err,
                                    sizeof(err)),
                     MST_OK);

    return out;
}


static int
tc_open(mst_crypt_t *c, const char *aad, const unsigned char *in,
    size_t len, char *err)
{
    int            rc;
    size_t         plen;
    unsigned char  out[256];

    memset(out, 0xAA, sizeof(out));
    plen = 12345;
    err[0] = '\0';

    rc = mst_crypt_open(c, aad, strlen(aad), in, len, out, &plen, err,
                        MST_ERRLEN);

    if (rc == MST_OK) {
        assert_int_equal(plen, strlen(tc_plain));
        assert_memory_equal(out, tc_plain, plen);

    } else {
        /* never garbage: the output is wiped and no length is given */
        assert_int_equal(plen, 12345);
        assert_null(memmem(out, sizeof(out), "heron", 5));
        assert_true(err[0] != '\0');
    }

    return rc;
}


static void
test_round_trip(void **state)
{
    char            err[MST_ERRLEN];
    size_t          len, len2;
    unsigned        ids[] = { 7 };
    mst_crypt_t    *c;
    unsigned char  *a, *b;

    c = tc_ring(ids, 1, 7);
    assert_true(mst_crypt_ready(c));
    assert_int_equal(mst_crypt_active_id(c), 7);

    a = tc_seal(c, tc_aad, &len);
    b = tc_seal(c, tc_aad, &len2);

    assert_int_equal(len, strlen(tc_plain) + 31);
    assert_true(mst_crypt_is_sealed(a, len));
    assert_int_equal(a[0], 0xFF);
    assert_int_equal(a[1], MST_CRYPT_VERSION);
    assert_int_equal(a[2], 7);

    /* the plain text is nowhere in the record */
    assert_null(memmem(a, len, "heron", 5));

    /* a fresh nonce each time: same text, other bytes */
    assert_int_equal(len, len2);
    assert_true(memcmp(a + 3, b + 3, MST_CRYPT_NONCE_LEN) != 0);
    assert_true(memcmp(a, b, len) != 0);

    assert_int_equal(tc_open(c, tc_aad, a, len, err), MST_OK);
    assert_int_equal(tc_open(c, tc_aad, b, len2, err), MST_OK);

    /* plain records are told apart by their first byte */
    assert_false(mst_crypt_is_sealed("{\"a\":1}", 7));
    assert_false(mst_crypt_is_sealed("token\0{}", 8));
    assert_false(mst_crypt_is_sealed("", 0));

    free(a);
    free(b);
    mst_crypt_free(c);
}


static void
test_empty_text(void **state)
{
    char             err[MST_ERRLEN];
    size_t           plen;
    unsigned         ids[] = { 1 };
    mst_crypt_t     *c;
    unsigned char    out[MST_CRYPT_OVERHEAD], plain[1];
    mst_crypt_iov_t  iov;

    c = tc_ring(ids, 1, 1);

    iov.data = "";
    iov.len = 0;

    assert_int_equal(mst_crypt_seal(c, "k", 1, &iov, 1, out, err,
                                    sizeof(err)),
                     MST_OK);
    assert_int_equal(mst_crypt_open(c, "k", 1, out, sizeof(out), plain,
                                    &plen, err, sizeof(err)),
                     MST_OK);
    assert_int_equal(plen, 0);

    /* an empty text is still authenticated */
    out[sizeof(out) - 1] ^= 1;
    assert_int_equal(mst_crypt_open(c, "k", 1, out, sizeof(out), plain,
                                    &plen, err, sizeof(err)),
                     MST_ECRYPT);

    mst_crypt_free(c);
}


static void
test_flipped_bit(void **state)
{
    char            err[MST_ERRLEN];
    size_t          len, i;
    unsigned        bit, ids[] = { 3, 9 };
    mst_crypt_t    *c;
    unsigned char  *a;

    c = tc_ring(ids, 2, 3);
    a = tc_seal(c, tc_aad, &len);

    /* every byte, a bit each: version, key id, nonce, text, tag */

    for (i = 1; i < len; i++) {
        bit = 1u << (i % 8);
        a[i] ^= bit;

        if (tc_open(c, tc_aad, a, len, err) != MST_ECRYPT) {
            fail_msg("flipped bit %u of byte %zu still opens", bit, i);
        }

        a[i] ^= bit;
    }

    /* and the magic byte: not a sealed record any more */
    a[0] ^= 1;
    assert_false(mst_crypt_is_sealed(a, len));
    assert_int_equal(tc_open(c, tc_aad, a, len, err), MST_ECRYPT);
    a[0] ^= 1;

    assert_int_equal(tc_open(c, tc_aad, a, len, err), MST_OK);

    free(a);
    mst_crypt_free(c);
}


static void
test_wrong_aad(void **state)
{
    char            err[MST_ERRLEN];
    size_t          len;
    unsigned        ids[] = { 1 };
    mst_crypt_t    *c;
    unsigned char  *a;

    c = tc_ring(ids, 1, 1);
    a = tc_seal(c, tc_aad, &len);

    /* moved under another key, or into another sub-database */
    assert_int_equal(tc_open(c, "w" "wf_0000000000010000abce", a, len, err),
                     MST_ECRYPT);
    assert_non_null(strstr(err, "authentication"));
    assert_int_equal(tc_open(c, "c" "wf_0000000000010000abcd", a, len, err),
                     MST_ECRYPT);
    assert_int_equal(tc_open(c, "", a, len, err), MST_ECRYPT);
    assert_int_equal(tc_open(c, tc_aad, a, len, err), MST_OK);

    free(a);
    mst_crypt_free(c);
}


static void
test_unknown_key(void **state)
{
    char            err[MST_ERRLEN];
    size_t          len;
    unsigned        one[] = { 1 }, two[] = { 2 };
    mst_crypt_t    *c1, *c2, *c1b;
    unsigned char  *a;
    unsigned char   key[MST_CRYPT_KEY_LEN];

    c1 = tc_ring(one, 1, 1);
    c2 = tc_ring(two, 1, 2);
    a = tc_seal(c1, tc_aad, &len);

    assert_int_equal(tc_open(c2, tc_aad, a, len, err), MST_ECRYPT);
    assert_non_null(strstr(err, "key id 1"));
    assert_non_null(strstr(err, "not configured"));

    /* no ring at all */
    assert_int_equal(tc_open(NULL, tc_aad, a, len, err), MST_ECRYPT);

    /* same id, another key: the tag fails */
    c1b = mst_crypt_create(err, sizeof(err));
    assert_non_null(c1b);
    tc_key(key, 99);
    assert_int_equal(mst_crypt_add_key(c1b, 1, key, 1, err, sizeof(err)),
                     MST_OK);
    assert_int_equal(tc_open(c1b, tc_aad, a, len, err), MST_ECRYPT);

    free(a);
    mst_crypt_free(c1);
    mst_crypt_free(c2);
    mst_crypt_free(c1b);
}


static void
test_truncated(void **state)
{
    char            err[MST_ERRLEN];
    size_t          len, n;
    unsigned        ids[] = { 1 };
    mst_crypt_t    *c;
    unsigned char  *a;

    c = tc_ring(ids, 1, 1);
    a = tc_seal(c, tc_aad, &len);

    for (n = 0; n < len; n++) {
        if (tc_open(c, tc_aad, a, n, err) != MST_ECRYPT) {
            fail_msg("a record cut to %zu of %zu bytes opens", n, len);
        }
    }

    assert_int_equal(tc_open(c, tc_aad, a, 5, err), MST_ECRYPT);
    assert_non_null(strstr(err, "truncated"));

    /* another version */
    a[1] = 2;
    assert_int_equal(tc_open(c, tc_aad, a, len, err), MST_ECRYPT);
    assert_non_null(strstr(err, "version"));

    free(a);
    mst_crypt_free(c);
}


/* nonces come in batches per thread: still never one twice */
static void
test_nonces(void **state)
{
    int             fd[2], st;
    char            err[MST_ERRLEN];
    pid_t           pid;
    size_t          len, i, j;
    unsigned        ids[] = { 1 };
    mst_crypt_t    *c;
    unsigned char  *a, seen[100][MST_CRYPT_NONCE_LEN];
    unsigned char   mine[MST_CRYPT_NONCE_LEN], child[MST_CRYPT_NONCE_LEN];

    c = tc_ring(ids, 1, 1);

    /* across several batches */
    for (i = 0; i < 100; i++) {
        a = tc_seal(c, tc_aad, &len);
        memcpy(seen[i], a + 3, MST_CRYPT_NONCE_LEN);
        free(a);

        for (j = 0; j < i; j++) {
            assert_true(memcmp(seen[i], seen[j], MST_CRYPT_NONCE_LEN) != 0);
        }
    }

    /* a forked child (an nginx worker) must not use the parent's batch */
    assert_int_equal(pipe(fd), 0);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        a = tc_seal(c, tc_aad, &len);
        st = write(fd[1], a + 3, MST_CRYPT_NONCE_LEN) == MST_CRYPT_NONCE_LEN;
        _exit(st ? 0 : 1);
    }

    a = tc_seal(c, tc_aad, &len);
    memcpy(mine, a + 3, MST_CRYPT_NONCE_LEN);
    free(a);

    assert_int_equal(read(fd[0], child, sizeof(child)), sizeof(child));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fd[0]);
    close(fd[1]);

    assert_true(memcmp(mine, child, MST_CRYPT_NONCE_LEN) != 0);

    (void) err;
    mst_crypt_free(c);
}


static void
test_rotation(void **state)
{
    char            err[MST_ERRLEN];
    size_t          len, len2;
    unsigned        v1[] = { 1 }, v2[] = { 1, 2 };
    mst_crypt_t    *c1, *c2;
    unsigned char  *a, *b;

    /* written with key 1 */
    c1 = tc_ring(v1, 1, 1);
    a = tc_seal(c1, tc_aad, &len);

    /* then key 2 becomes active, key 1 kept for reading */
    c2 = tc_ring(v2, 2, 2);
    assert_int_equal(mst_crypt_active_id(c2), 2);

    assert_int_equal(tc_open(c2, tc_aad, a, len, err), MST_OK);

    b = tc_seal(c2, tc_aad, &len2);
    assert_int_equal(b[2], 2);
    assert_int_equal(tc_open(c2, tc_aad, b, len2, err), MST_OK);

    /* the old ring cannot read what the new key sealed */
    assert_int_equal(tc_open(c1, tc_aad, b, len2, err), MST_ECRYPT);

    free(a);
    free(b);
    mst_crypt_free(c1);
    mst_crypt_free(c2);
}


static void
test_ring_errors(void **state)
{
    char             err[MST_ERRLEN];
    mst_crypt_t     *c;
    unsigned         i;
    unsigned char    key[MST_CRYPT_KEY_LEN], out[64];
    mst_crypt_iov_t  iov;

    c = mst_crypt_create(err, sizeof(err));
    assert_non_null(c);
    tc_key(key, 1);

    assert_false(mst_crypt_ready(c));
    assert_int_equal(mst_crypt_active_id(c), 0);

    /* no active key: nothing is sealed */
    iov.data = "x";
    iov.len = 1;
    assert_int_equal(mst_crypt_seal(c, "", 0, &iov, 1, out, err, sizeof(err)),
                     MST_ECRYPT);

    assert_int_equal(mst_crypt_add_key(c, 0, key, 0, err, sizeof(err)),
                     MST_EINVAL);
    assert_int_equal(mst_crypt_add_key(c, 256, key, 0, err, sizeof(err)),
                     MST_EINVAL);
    assert_int_equal(mst_crypt_add_key(c, 5, key, 0, err, sizeof(err)),
                     MST_OK);
    assert_int_equal(mst_crypt_add_key(c, 5, key, 1, err, sizeof(err)),
                     MST_EXISTS);
    assert_non_null(strstr(err, "duplicate key id 5"));
    assert_false(mst_crypt_ready(c));

    assert_int_equal(mst_crypt_add_key(c, 6, key, 1, err, sizeof(err)),
                     MST_OK);
    assert_int_equal(mst_crypt_add_key(c, 7, key, 1, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "only one key can be active"));

    for (i = 7; i < 7 + MST_CRYPT_MAX_KEYS - 2; i++) {
        assert_int_equal(mst_crypt_add_key(c, i, key, 0, err, sizeof(err)),
                         MST_OK);
    }

    assert_int_equal(mst_crypt_add_key(c, 200, key, 0, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "more than"));

    mst_crypt_free(c);
    mst_crypt_free(NULL);
}


static void
test_key_parse(void **state)
{
    int            i;
    char           err[MST_ERRLEN], hex[80];
    unsigned char  key[MST_CRYPT_KEY_LEN], want[MST_CRYPT_KEY_LEN];

    tc_key(want, 0x10);

    for (i = 0; i < MST_CRYPT_KEY_LEN; i++) {
        sprintf(hex + 2 * i, "%02X", want[i]);
    }

    assert_int_equal(mst_crypt_key_parse(hex, 64, 0, key, err, sizeof(err)),
                     MST_OK);
    assert_memory_equal(key, want, sizeof(key));

    /* lower case and a trailing newline, as openssl rand -hex 32 writes */
    for (i = 0; i < 64; i++) {
        hex[i] = (char) tolower((unsigned char) hex[i]);
    }
    hex[64] = '\n';
    hex[65] = '\0';
    assert_int_equal(mst_crypt_key_parse(hex, 65, 0, key, err, sizeof(err)),
                     MST_OK);
    assert_memory_equal(key, want, sizeof(key));

    /* too short, too long, not hex: the message has no byte of it */
    assert_int_equal(mst_crypt_key_parse(hex, 63, 0, key, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "64 hex digits"));

    hex[10] = 'g';
    assert_int_equal(mst_crypt_key_parse(hex, 64, 0, key, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "not a hex digit"));
    assert_null(strstr(err, hex + 11));

    /* raw: exactly 32 bytes (which may hold anything) */
    assert_int_equal(mst_crypt_key_parse((char *) want, 32, 1, key, err,
                                         sizeof(err)),
                     MST_OK);
    assert_memory_equal(key, want, sizeof(key));
    assert_int_equal(mst_crypt_key_parse((char *) want, 31, 1, key, err,
                                         sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "not 31 bytes"));
    assert_int_equal(mst_crypt_key_parse((char *) want, 32, 0, key, err,
                                         sizeof(err)),
                     MST_EINVAL);
}


static void
test_key_file_env(void **state)
{
    int            fd, i;
    char           err[MST_ERRLEN], path[600], hex[70];
    char          *dir;
    unsigned char  key[MST_CRYPT_KEY_LEN], want[MST_CRYPT_KEY_LEN];

    dir = mst_test_tmpdir();
    tc_key(want, 0x42);

    for (i = 0; i < MST_CRYPT_KEY_LEN; i++) {
        sprintf(hex + 2 * i, "%02x", want[i]);
    }

    /* hex file */
    snprintf(path, sizeof(path), "%s/hex.key", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hex, 64), 64);
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);

    memset(key, 0, sizeof(key));
    assert_int_equal(mst_crypt_key_file(path, key, err, sizeof(err)), MST_OK);
    assert_memory_equal(key, want, sizeof(key));

    /* raw file */
    snprintf(path, sizeof(path), "%s/raw.key", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, want, 32), 32);
    close(fd);

    memset(key, 0, sizeof(key));
    assert_int_equal(mst_crypt_key_file(path, key, err, sizeof(err)), MST_OK);
    assert_memory_equal(key, want, sizeof(key));

    /* wrong length: the message names the file and the length */
    snprintf(path, sizeof(path), "%s/short.key", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, want, 20), 20);
    close(fd);

    assert_int_equal(mst_crypt_key_file(path, key, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "short.key"));
    assert_non_null(strstr(err, "not 20 bytes"));

    /* missing, a directory */
    snprintf(path, sizeof(path), "%s/nope.key", dir);
    assert_int_equal(mst_crypt_key_file(path, key, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "cannot open key file"));
    assert_int_equal(mst_crypt_key_file(dir, key, err, sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "not a regular file"));

    /* environment */
    hex[64] = '\0';
    setenv("TC_MAESTRO_KEY", hex, 1);
    memset(key, 0, sizeof(key));
    assert_int_equal(mst_crypt_key_env("TC_MAESTRO_KEY", key, err,
                                       sizeof(err)),
                     MST_OK);
    assert_memory_equal(key, want, sizeof(key));

    setenv("TC_MAESTRO_KEY", "abcd", 1);
    assert_int_equal(mst_crypt_key_env("TC_MAESTRO_KEY", key, err,
                                       sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "TC_MAESTRO_KEY"));
    assert_null(strstr(err, "abcd"));

    unsetenv("TC_MAESTRO_KEY");
    assert_int_equal(mst_crypt_key_env("TC_MAESTRO_KEY", key, err,
                                       sizeof(err)),
                     MST_EINVAL);
    assert_non_null(strstr(err, "is not set"));

    mst_test_rmdir(dir);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_text),
        cmocka_unit_test(test_flipped_bit),
        cmocka_unit_test(test_wrong_aad),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_nonces),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_ring_errors),
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test(test_key_file_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
