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

#endif /* _MST_TEST_H_INCLUDED_ */
