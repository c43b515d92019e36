/*
 * Copyright (C) Maestro authors
 */

/* helpers shared by the unit tests (cmocka) */

#ifndef _MST_TEST_H_INCLUDED_
#define _MST_TEST_H_INCLUDED_

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "mst_crypt.h"

/* a fresh temporary directory (mkdtemp); the caller frees the string */
static inline char *
mst_test_tmpdir(void)
{
    char  *dir;

    dir = strdup("/tmp/mst-test-XXXXXX");
    if (dir == NULL || mkdtemp(dir) == NULL) {
        fail_msg("mkdtemp failed");
    }
    return dir;
}

/* rm -rf dir, then free it */
static inline void
mst_test_rmdir(char *dir)
{
    char  cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "warning: cannot remove %s\n", dir);
    }
    free(dir);
}

/* path of a built artefact: $MST_BUILD (set by the runner) or "build" */
static inline const char *
mst_test_build_dir(void)
{
    const char  *b;

    b = getenv("MST_BUILD");
    return b ? b : "build";
}

/*
 * MST_TEST_CRYPT=1 runs every store test with values sealed (one ring for
 * the process, kept until exit), so each of them also checks sealing.
 */
static inline const mst_crypt_t *
mst_test_crypt(void)
{
    char                 err[MST_ERRLEN];
    const char          *v;
    unsigned char        key[MST_CRYPT_KEY_LEN];
    static mst_crypt_t  *ring;

    v = getenv("MST_TEST_CRYPT");

    if (v == NULL || strcmp(v, "1") != 0) {
        return NULL;
    }

    if (ring == NULL) {
        memset(key, 0x5a, sizeof(key));
        ring = mst_crypt_create(err, sizeof(err));
        assert_non_null(ring);
        assert_int_equal(mst_crypt_add_key(ring, 1, key, 1, err,
                                           sizeof(err)),
                         MST_OK);
    }

    return ring;
}

#endif /* _MST_TEST_H_INCLUDED_ */
