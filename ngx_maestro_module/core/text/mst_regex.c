/*
 * Copyright (C) Maestro authors
 */

#include <stdio.h>

#include "mst_regex.h"


pcre2_code *
mst_regex_compile(const char *pattern, size_t len, uint32_t options,
    char *why, size_t whylen)
{
    int          ec;
    PCRE2_SIZE   off;
    pcre2_code  *re;
    PCRE2_UCHAR  msg[256];

    re = pcre2_compile((PCRE2_SPTR) pattern, len, options, &ec, &off, NULL);

    if (re == NULL) {
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0) {
            snprintf((char *) msg, sizeof(msg), "error %d", ec);
        }

        snprintf(why, whylen, "%s at offset %zu", (char *) msg,
                 (size_t) off);
        return NULL;
    }

    /* JIT is an optimisation only: failure leaves the interpreter */
    (void) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);

    return re;
}
