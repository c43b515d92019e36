/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Which web origins may call the API from a browser (maestro_cors_origin):
 * the decision of ngx_http_maestro_cors.c, here where unit tests reach it.
 *
 * An origin is its serialisation (RFC 6454): scheme "://" host [":" port],
 * nothing else: no user info, path, query or fragment, not even a
 * trailing "/". mst_cors_origin() checks one and gives its canonical
 * form: scheme and host in lower case, the default port of http (80)
 * and https (443) dropped, so "HTTPS://App.Example:443" is
 * "https://app.example". A configured origin and the Origin header a
 * browser sends are both put in that form, then compared as bytes.
 *
 * "null" (sandboxed frames, file: pages, some redirects) is never an
 * allowed origin: any page can make its requests carry it.
 */

#ifndef _MST_CORS_H_INCLUDED_
#define _MST_CORS_H_INCLUDED_

#include "mst_common.h"

#define MST_CORS_ORIGIN_MAX  300        /* bytes of an origin, NUL too */

/*
 * The canonical form of the origin in the len bytes at s, in out
 * (outlen >= MST_CORS_ORIGIN_MAX, NUL-terminated). MST_OK, or
 * MST_EINVAL and err says why.
 */
int mst_cors_origin(const char *s, size_t len, char *out, size_t outlen,
    char *err, size_t errlen);

/*
 * Whether a request's Origin (len bytes at origin) is allowed: any is
 * set ("*"), or its canonical form is one of the n canonical origins of
 * list. A malformed Origin is not allowed.
 */
int mst_cors_allowed(const char *const *list, size_t n, int any,
    const char *origin, size_t len);

#endif /* _MST_CORS_H_INCLUDED_ */
