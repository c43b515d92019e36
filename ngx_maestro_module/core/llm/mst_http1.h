/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The response side of an HTTP/1.1 client, without I/O: the status line
 * and header fields, then the body as Content-Length, chunked or "until
 * the connection closes" framing (RFC 9112, sections 4, 6 and 7). The
 * caller owns the bytes and the socket; this says how many bytes were
 * used, which of them are body, and whether the connection may be kept.
 *
 * Strict where a gateway must be: a bad status line, a field without a
 * colon, a Content-Length that is not one number, or both it and chunked
 * (a smuggling shape) are errors, not guesses.
 */

#ifndef _MST_HTTP1_H_INCLUDED_
#define _MST_HTTP1_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    MST_HTTP1_HEAD = 0,
    MST_HTTP1_LENGTH,           /* Content-Length bytes to come */
    MST_HTTP1_CHUNK_SIZE,
    MST_HTTP1_CHUNK_DATA,
    MST_HTTP1_CHUNK_END,        /* the CRLF after a chunk's data */
    MST_HTTP1_TRAILER,
    MST_HTTP1_UNTIL_CLOSE,
    MST_HTTP1_DONE
};

#define MST_HTTP1_AGAIN  0      /* more bytes are needed */
#define MST_HTTP1_ERROR  (-1)

typedef struct {
    int                 state;
    int                 status;         /* e.g. 200 */
    int                 minor;          /* HTTP/1.minor */
    int64_t             left;           /* of the body or of the chunk */
    unsigned            chunked:1;
    unsigned            has_length:1;
    unsigned            close:1;        /* "Connection: close" or 1.0 */
    unsigned            keep:1;         /* 1.0 with keep-alive */
    const char         *error;          /* why, after MST_HTTP1_ERROR */
} mst_http1_t;

/* a header field line as it came, with its CRLF (as libcurl gives it) */
typedef void (*mst_http1_field_pt)(void *arg, const char *line, size_t n);

void mst_http1_init(mst_http1_t *h);

/*
 * The head, once it is all in p[0..n): the bytes it took (status line,
 * fields, the empty line); MST_HTTP1_AGAIN while its end has not come;
 * MST_HTTP1_ERROR. Interim 1xx heads are skipped (their bytes counted).
 * field() gets each field of the final head.
 */
ssize_t mst_http1_head(mst_http1_t *h, const char *p, size_t n,
    mst_http1_field_pt field, void *arg);

/*
 * The body: from p[0..n), the bytes used (>= 0) or MST_HTTP1_ERROR, and
 * in *data / *len the body bytes among them (may be none). Call again
 * with what is left until it uses nothing: then more bytes are needed,
 * or the state is MST_HTTP1_DONE.
 */
ssize_t mst_http1_body(mst_http1_t *h, const char *p, size_t n,
    const char **data, size_t *len);

/* the connection ended: whether that ends the body (close-delimited) */
int mst_http1_eof(mst_http1_t *h);

/* after MST_HTTP1_DONE: whether the connection may serve another request */
int mst_http1_reusable(const mst_http1_t *h);

#endif /* _MST_HTTP1_H_INCLUDED_ */
