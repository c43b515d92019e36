/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The prompt guard: allow and deny rule lists (PCRE2, caseless, UTF-8,
 * JIT-compiled once at configuration) matched against the prompt after
 * Unicode normalisation, so look-alike characters cannot slip through:
 * NFKC (full-width letters, ligatures, compatibility forms become their
 * plain equivalents) with the default-ignorable code points removed
 * (zero-width characters, bidi controls, soft hyphens), by libutf8proc.
 *
 * A prompt is blocked when a deny rule matches, or when there are allow
 * rules and none matches. Optional PII redaction replaces e-mail
 * addresses, phone numbers, card numbers (those passing the Luhn check)
 * and API-key shapes with "[REDACTED:kind]" before the prompt goes on.
 *
 * A guard is immutable once built; any thread may use it.
 */

#ifndef _MST_GUARD_H_INCLUDED_
#define _MST_GUARD_H_INCLUDED_

#include "mst_common.h"

typedef struct mst_guard_s  mst_guard_t;

mst_guard_t *mst_guard_new(void);
void mst_guard_free(mst_guard_t *g);

/* err names the pattern and the offset of a compile error */
int mst_guard_deny(mst_guard_t *g, const char *pattern, char *err,
    size_t errlen);
int mst_guard_allow(mst_guard_t *g, const char *pattern, char *err,
    size_t errlen);
void mst_guard_redact(mst_guard_t *g, int on);

/* NFKC, default-ignorables removed; malloc()ed, NULL when not UTF-8 */
char *mst_normalize(const char *text, size_t len, size_t *outlen);

/* replaces PII; *out malloc()ed; returns how many were replaced */
size_t mst_redact_pii(const char *text, size_t len, char **out);

/*
 * MST_OK: *out (malloc()ed) is the prompt to use: normalised, and
 * redacted when that is on. MST_EINVAL: blocked, why says by what.
 */
int mst_guard_check(const mst_guard_t *g, const char *text, size_t len,
    char **out, char *why, size_t whylen);

/* the same for any text: what names it in why ("context \"notes\"") */
int mst_guard_text(const mst_guard_t *g, const char *what, const char *text,
    size_t len, char **out, char *why, size_t whylen);

#endif /* _MST_GUARD_H_INCLUDED_ */
