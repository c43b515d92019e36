/*
 * Copyright (C) Maestro authors
 */

/*
 * PCRE2 patterns from the configuration (guard rules, intents, graph
 * edges): compiled one way, with JIT where the platform has it, and a
 * bad pattern reported one way ("<reason> at offset N").
 */

#ifndef _MST_REGEX_H_INCLUDED_
#define _MST_REGEX_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH  8
#endif
#include <pcre2.h>

/* what people write: case-insensitive, Unicode-aware */
#define MST_REGEX_TEXT  (PCRE2_CASELESS | PCRE2_UTF | PCRE2_UCP)

/*
 * len may be PCRE2_ZERO_TERMINATED. NULL on a bad pattern, with why
 * ("<reason> at offset N") filled.
 */
pcre2_code *mst_regex_compile(const char *pattern, size_t len,
    uint32_t options, char *why, size_t whylen);

#endif /* _MST_REGEX_H_INCLUDED_ */
