/*
 * Copyright (C) Maestro authors
 */

/*
 * Compact JSON text of a jansson value, for the store's hot path.
 *
 * The text is what json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) gives
 * (keys in insertion order, UTF-8 kept as is, "/" not escaped, reals with
 * 17 significant digits), built in one growing buffer with no callbacks
 * and no printf for integers: every step of a workflow writes its record,
 * checkpoint and events as text, and jansson's dumper was most of a step.
 */

#ifndef _MST_JSON_H_INCLUDED_
#define _MST_JSON_H_INCLUDED_

#include "mst_common.h"

/*
 * The text (malloc, NUL-terminated) and its length; NULL when out of
 * memory or when json is NULL or nested deeper than 2048 levels.
 */
char *mst_json_dump(const json_t *json, size_t *len);

/*
 * Whether the n bytes at p are one JSON object (whitespace around it
 * allowed), checked for syntax only, without building anything: strings
 * closed, escapes and nesting right, commas and colons in place, literals
 * and numbers well formed. UTF-8 is not checked. For text passed on as it
 * came (the gateway's pass-through), where a parse would be thrown away.
 */
int mst_json_object_ok(const char *p, size_t n);

#endif /* _MST_JSON_H_INCLUDED_ */
