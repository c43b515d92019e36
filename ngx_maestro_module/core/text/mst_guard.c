/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_guard.h */

#define PCRE2_CODE_UNIT_WIDTH  8

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <pcre2.h>
#include <utf8proc.h>

#include "mst_guard.h"
#include "mst_regex.h"


#define MST_GUARD_MAX  64


typedef struct {
    pcre2_code   *re[MST_GUARD_MAX];
    char         *src[MST_GUARD_MAX];
    size_t        n;
} mst_guard_rules_t;


struct mst_guard_s {
    mst_guard_rules_t   deny;
    mst_guard_rules_t   allow;
    int                 redact;
};


/* the PII shapes, compiled once per process */
typedef struct {
    const char   *kind;
    const char   *pattern;
    int           luhn;
    pcre2_code   *re;
} mst_guard_pii_t;


static mst_guard_pii_t  mst_guard_pii[] = {
    { "email", "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}", 0, NULL },
    { "api_key", "\\b(?:sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}"
                 "|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpsr]-[A-Za-z0-9-]{10,})",
      0, NULL },
    { "card", "(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])", 1, NULL },
    /* not inside a longer group of digits (a card that failed Luhn) */
    { "phone", "(?<![0-9A-Za-z])(?<![0-9][ .-])(?:\\+[0-9]{1,3}[ .-]?)?"
               "(?:\\([0-9]{2,4}\\)[ .-]?|[0-9]{2,4}[ .-])"
               "[0-9]{3,4}[ .-]?[0-9]{3,4}(?![ .-]?[0-9])", 0, NULL },
    { NULL, NULL, 0, NULL }
};

static pthread_once_t  mst_guard_once = PTHREAD_ONCE_INIT;


static void
mst_guard_pii_init(void)
{
    int               ec;
    PCRE2_SIZE        off;
    mst_guard_pii_t  *p;

    for (p = mst_guard_pii; p->kind != NULL; p++) {
        p->re = pcre2_compile((PCRE2_SPTR) p->pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF, &ec, &off, NULL);
        if (p->re != NULL) {
            (void) pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
        }
    }
}


mst_guard_t *
mst_guard_new(void)
{
    return calloc(1, sizeof(mst_guard_t));
}


static void
mst_guard_rules_free(mst_guard_rules_t *r)
{
    size_t  i;

    for (i = 0; i < r->n; i++) {
        pcre2_code_free(r->re[i]);
        free(r->src[i]);
    }
}


void
mst_guard_free(mst_guard_t *g)
{
    if (g == NULL) {
        return;
    }

    mst_guard_rules_free(&g->deny);
    mst_guard_rules_free(&g->allow);
    free(g);
}


static int
mst_guard_add(mst_guard_rules_t *r, const char *pattern, char *err,
    size_t errlen)
{
    char         why[300];
    pcre2_code  *re;

    if (r->n == MST_GUARD_MAX) {
        return mst_err(err, errlen, MST_EINVAL, "more than %d rules",
                       MST_GUARD_MAX);
    }

    re = mst_regex_compile(pattern, PCRE2_ZERO_TERMINATED, MST_REGEX_TEXT,
                           why, sizeof(why));
    if (re == NULL) {
        return mst_err(err, errlen, MST_EINVAL, "pattern \"%s\": %s",
                       pattern, why);
    }

    r->re[r->n] = re;
    r->src[r->n] = strdup(pattern);
    r->n++;

    return MST_OK;
}


int
mst_guard_deny(mst_guard_t *g, const char *pattern, char *err,
    size_t errlen)
{
    return mst_guard_add(&g->deny, pattern, err, errlen);
}


int
mst_guard_allow(mst_guard_t *g, const char *pattern, char *err,
    size_t errlen)
{
    return mst_guard_add(&g->allow, pattern, err, errlen);
}


void
mst_guard_redact(mst_guard_t *g, int on)
{
    g->redact = on;
}


char *
mst_normalize(const char *text, size_t len, size_t *outlen)
{
    utf8proc_ssize_t   n;
    utf8proc_uint8_t  *out;

    /* NFKC (compose + compat) without default-ignorable code points */
    n = utf8proc_map((const utf8proc_uint8_t *) text, (utf8proc_ssize_t) len,
                     &out, UTF8PROC_STABLE | UTF8PROC_COMPOSE
                           | UTF8PROC_COMPAT | UTF8PROC_IGNORE);
    if (n < 0) {
        return NULL;
    }

    *outlen = (size_t) n;

    return (char *) out;
}


static int
mst_guard_luhn(const char *p, size_t len)
{
    int     sum, dbl, d, digits;
    size_t  i;

    sum = 0;
    dbl = 0;
    digits = 0;

    for (i = len; i > 0; i--) {
        if (!isdigit((unsigned char) p[i - 1])) {
            continue;
        }

        d = p[i - 1] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }

        sum += d;
        dbl = !dbl;
        digits++;
    }

    return digits >= 13 && sum % 10 == 0;
}


size_t
mst_redact_pii(const char *text, size_t len, char **out)
{
    int                rc;
    char              *buf, *nb;
    size_t             count, cap, olen, start, end, pos, k;
    PCRE2_SIZE        *ov;
    mst_guard_pii_t   *p;
    pcre2_match_data  *md;
    char               tag[32];

    pthread_once(&mst_guard_once, mst_guard_pii_init);

    *out = NULL;
    count = 0;

    /* one kind at a time over the text so far */

    buf = malloc(len + 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, text, len);
    buf[len] = '\0';
    olen = len;

    for (p = mst_guard_pii; p->kind != NULL; p++) {
        if (p->re == NULL) {
            continue;
        }

        md = pcre2_match_data_create_from_pattern(p->re, NULL);
        if (md == NULL) {
            continue;
        }

        snprintf(tag, sizeof(tag), "[REDACTED:%s]", p->kind);
        pos = 0;

        while (pos <= olen) {
            rc = pcre2_match(p->re, (PCRE2_SPTR) buf, olen, pos, 0, md,
                             NULL);
            if (rc < 0) {
                break;
            }

            ov = pcre2_get_ovector_pointer(md);
            start = ov[0];
            end = ov[1];

            if (end == start) {
                pos = end + 1;
                continue;
            }

            if (p->luhn && !mst_guard_luhn(buf + start, end - start)) {
                pos = end;
                continue;
            }

            k = strlen(tag);
            cap = olen - (end - start) + k + 1;

            nb = malloc(cap);
            if (nb == NULL) {
                break;
            }

            memcpy(nb, buf, start);
            memcpy(nb + start, tag, k);
            memcpy(nb + start + k, buf + end, olen - end);
            olen = olen - (end - start) + k;
            nb[olen] = '\0';

            free(buf);
            buf = nb;
            pos = start + k;
            count++;
        }

        pcre2_match_data_free(md);
    }

    *out = buf;

    return count;
}


static int
mst_guard_match(const mst_guard_rules_t *r, const char *text, size_t len)
{
    int                rc;
    size_t             i;
    pcre2_match_data  *md;

    for (i = 0; i < r->n; i++) {
        md = pcre2_match_data_create_from_pattern(r->re[i], NULL);
        if (md == NULL) {
            continue;
        }

        rc = pcre2_match(r->re[i], (PCRE2_SPTR) text, len, 0, 0, md, NULL);
        pcre2_match_data_free(md);

        if (rc >= 0) {
            return (int) i;
        }
    }

    return -1;
}


int
mst_guard_check(const mst_guard_t *g, const char *text, size_t len,
    char **out, char *why, size_t whylen)
{
    return mst_guard_text(g, "the prompt", text, len, out, why, whylen);
}


int
mst_guard_text(const mst_guard_t *g, const char *what, const char *text,
    size_t len, char **out, char *why, size_t whylen)
{
    int      k;
    char    *norm, *red;
    size_t   nlen;

    *out = NULL;

    norm = mst_normalize(text, len, &nlen);
    if (norm == NULL) {
        return mst_err(why, whylen, MST_EINVAL, "%s is not UTF-8", what);
    }

    k = mst_guard_match(&g->deny, norm, nlen);
    if (k >= 0) {
        free(norm);
        return mst_err(why, whylen, MST_EINVAL,
                       "%s matches deny rule %d (\"%s\")", what, k + 1,
                       g->deny.src[k]);
    }

    if (g->allow.n > 0 && mst_guard_match(&g->allow, norm, nlen) < 0) {
        free(norm);
        return mst_err(why, whylen, MST_EINVAL,
                       "%s matches no allow rule", what);
    }

    if (g->redact) {
        (void) mst_redact_pii(norm, nlen, &red);
        if (red == NULL) {
            free(norm);
            return mst_err(why, whylen, MST_ENOMEM, "out of memory");
        }
        free(norm);
        norm = red;
    }

    *out = norm;

    return MST_OK;
}
