/*
 * Copyright (C) Maestro authors
 */

#include <string.h>
#include <strings.h>

#include "mst_http1.h"


#define MST_HTTP1_MAX_CHUNK_LINE  4096


void
mst_http1_init(mst_http1_t *h)
{
    memset(h, 0, sizeof(*h));
    h->state = MST_HTTP1_HEAD;
}


static ssize_t
mst_http1_fail(mst_http1_t *h, const char *why)
{
    h->error = why;
    return MST_HTTP1_ERROR;
}


/* the end of the head: the offset after "\r\n\r\n" (or bare "\n\n") */
static size_t
mst_http1_head_end(const char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] != '\n') {
            continue;
        }
        if (i + 1 < n && p[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            return i + 3;
        }
    }

    return 0;
}


static int
mst_http1_is(const char *p, size_t n, const char *name)
{
    size_t  len = strlen(name);

    return n == len && strncasecmp(p, name, len) == 0;
}


/* whether a comma-separated value list has token (case-insensitive) */
static int
mst_http1_has_token(const char *v, size_t n, const char *token)
{
    size_t       len, i, s, e;

    len = strlen(token);
    i = 0;

    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        s = i;
        while (i < n && v[i] != ',') {
            i++;
        }
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (e - s == len && strncasecmp(v + s, token, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
mst_http1_status_line(mst_http1_t *h, const char *p, size_t n)
{
    /* "HTTP/1.x NNN[ reason]" */

    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0
        || p[7] < '0' || p[7] > '9' || p[8] != ' '
        || p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9'
        || p[11] < '0' || p[11] > '9' || (n > 12 && p[12] != ' '))
    {
        return -1;
    }

    h->minor = p[7] - '0';
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');

    return 0;
}


/* one field; the line without its end of line */
static int
mst_http1_field(mst_http1_t *h, const char *p, size_t n)
{
    const char  *colon, *v;
    size_t       name, vn, i;
    int64_t      len;

    colon = memchr(p, ':', n);
    if (colon == NULL || colon == p) {
        return -1;
    }

    name = (size_t) (colon - p);

    for (i = 0; i < name; i++) {
        if (p[i] == ' ' || p[i] == '\t') {
            return -1;      /* whitespace before the colon: refused */
        }
    }

    v = colon + 1;
    vn = n - name - 1;

    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) {
        vn--;
    }

    if (mst_http1_is(p, name, "content-length")) {
        if (vn == 0 || vn > 18) {
            return -1;
        }

        len = 0;
        for (i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9') {
                return -1;
            }
            len = len * 10 + (v[i] - '0');
        }

        if (h->has_length && h->left != len) {
            return -1;
        }

        h->has_length = 1;
        h->left = len;

    } else if (mst_http1_is(p, name, "transfer-encoding")) {
        if (!mst_http1_has_token(v, vn, "chunked")) {
            return -1;      /* a coding we cannot undo */
        }
        h->chunked = 1;

    } else if (mst_http1_is(p, name, "connection")) {
        if (mst_http1_has_token(v, vn, "close")) {
            h->close = 1;
        }
        if (mst_http1_has_token(v, vn, "keep-alive")) {
            h->keep = 1;
        }
    }

    return 0;
}


ssize_t
mst_http1_head(mst_http1_t *h, const char *p, size_t n,
    mst_http1_field_pt field, void *arg)
{
    size_t       used, end, i, s, len;
    const char  *line;

    used = 0;

    for ( ;; ) {
        end = mst_http1_head_end(p + used, n - used);
        if (end == 0) {
            return MST_HTTP1_AGAIN;
        }

        mst_http1_init(h);      /* again after an interim 1xx head */

        /* lines of p[used .. used + end) */
        s = used;
        line = NULL;

        for (i = used; i < used + end; i++) {
            if (p[i] != '\n') {
                continue;
            }

            len = i - s;
            if (len > 0 && p[s + len - 1] == '\r') {
                len--;
            }

            if (len == 0) {
                break;              /* the empty line */
            }

            if (line == NULL) {
                line = p + s;
                if (mst_http1_status_line(h, line, len) != 0) {
                    return mst_http1_fail(h, "a bad status line");
                }

            } else if (p[s] == ' ' || p[s] == '\t') {
                return mst_http1_fail(h, "a folded header field");

            } else if (mst_http1_field(h, p + s, len) != 0) {
                return mst_http1_fail(h, "a bad header field");

            } else if (field != NULL && h->status >= 200) {
                field(arg, p + s, i + 1 - s);
            }

            s = i + 1;
        }

        used += end;

        if (h->status >= 100 && h->status < 200 && h->status != 101) {
            continue;               /* interim: the real head follows */
        }

        break;
    }

    if (h->status == 101) {
        return mst_http1_fail(h, "an unasked protocol switch");
    }

    if (h->chunked && h->has_length) {
        return mst_http1_fail(h, "both Content-Length and chunked");
    }

    if (h->minor == 0 && !h->keep) {
        h->close = 1;
    }

    if (h->status == 204 || h->status == 304) {
        h->state = MST_HTTP1_DONE;

    } else if (h->chunked) {
        h->state = MST_HTTP1_CHUNK_SIZE;

    } else if (h->has_length) {
        h->state = h->left > 0 ? MST_HTTP1_LENGTH : MST_HTTP1_DONE;

    } else {
        h->state = MST_HTTP1_UNTIL_CLOSE;
        h->close = 1;
    }

    return (ssize_t) used;
}


/* a chunk-size line: hex digits, maybe ";ext", CRLF */
static ssize_t
mst_http1_chunk_size(mst_http1_t *h, const char *p, size_t n)
{
    const char  *nl;
    size_t       i, digits;
    int64_t      size;
    int          d;

    nl = memchr(p, '\n', n);
    if (nl == NULL) {
        return n > MST_HTTP1_MAX_CHUNK_LINE
               ? mst_http1_fail(h, "a chunk-size line too long") : 0;
    }

    size = 0;
    digits = 0;

    for (i = 0; p + i < nl; i++) {
        d = p[i];

        if (d >= '0' && d <= '9') {
            d -= '0';
        } else if ((d | 0x20) >= 'a' && (d | 0x20) <= 'f') {
            d = (d | 0x20) - 'a' + 10;
        } else {
            break;
        }

        if (++digits > 15) {
            return mst_http1_fail(h, "a chunk too big");
        }
        size = size * 16 + d;
    }

    if (digits == 0
        || (p[i] != ';' && p[i] != '\r' && p[i] != '\n'
            && p[i] != ' ' && p[i] != '\t'))
    {
        return mst_http1_fail(h, "a bad chunk size");
    }

    h->left = size;
    h->state = size > 0 ? MST_HTTP1_CHUNK_DATA : MST_HTTP1_TRAILER;

    return nl + 1 - p;
}


ssize_t
mst_http1_body(mst_http1_t *h, const char *p, size_t n,
    const char **data, size_t *len)
{
    const char  *nl;
    size_t       take;

    *data = NULL;
    *len = 0;

    switch (h->state) {

    case MST_HTTP1_LENGTH:
    case MST_HTTP1_CHUNK_DATA:
        take = n;
        if ((int64_t) take > h->left) {
            take = (size_t) h->left;
        }

        *data = p;
        *len = take;
        h->left -= take;

        if (h->left == 0) {
            h->state = h->state == MST_HTTP1_LENGTH ? MST_HTTP1_DONE
                                                    : MST_HTTP1_CHUNK_END;
        }

        return (ssize_t) take;

    case MST_HTTP1_UNTIL_CLOSE:
        *data = p;
        *len = n;
        return (ssize_t) n;

    case MST_HTTP1_CHUNK_SIZE:
        return mst_http1_chunk_size(h, p, n);

    case MST_HTTP1_CHUNK_END:
        if (n == 0) {
            return 0;
        }
        if (p[0] == '\n') {
            h->state = MST_HTTP1_CHUNK_SIZE;
            return 1;
        }
        if (p[0] != '\r') {
            return mst_http1_fail(h, "no CRLF after a chunk");
        }
        if (n < 2) {
            return 0;
        }
        if (p[1] != '\n') {
            return mst_http1_fail(h, "no CRLF after a chunk");
        }
        h->state = MST_HTTP1_CHUNK_SIZE;
        return 2;

    case MST_HTTP1_TRAILER:
        /* trailer fields are read and dropped, up to the empty line */
        nl = memchr(p, '\n', n);
        if (nl == NULL) {
            return n > MST_HTTP1_MAX_CHUNK_LINE
                   ? mst_http1_fail(h, "a trailer line too long") : 0;
        }
        if (nl == p || (nl == p + 1 && p[0] == '\r')) {
            h->state = MST_HTTP1_DONE;
        }
        return nl + 1 - p;

    case MST_HTTP1_DONE:
        return 0;

    default:
        return mst_http1_fail(h, "no head yet");
    }
}


int
mst_http1_eof(mst_http1_t *h)
{
    if (h->state == MST_HTTP1_UNTIL_CLOSE) {
        h->state = MST_HTTP1_DONE;
    }

    return h->state == MST_HTTP1_DONE;
}


int
mst_http1_reusable(const mst_http1_t *h)
{
    return h->state == MST_HTTP1_DONE && !h->close;
}
