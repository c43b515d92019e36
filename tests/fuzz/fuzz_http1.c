/*
 * Copyright (C) Maestro authors
 */

/*
 * libFuzzer target for core/mst_http1.c, the parser of what providers
 * send back (untrusted bytes). Beyond "no crash, no overflow" (ASan,
 * UBSan), a differential check: the same bytes fed whole and fed in
 * pieces of the size the first input byte picks must give the same
 * status, the same body bytes and the same end state, the way the event
 * loop sees a response arrive in arbitrary reads.
 *
 *   make fuzz                       (60 s; FUZZ_SECONDS=N for longer)
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mst_http1.h"


#define FUZZ_BUF  8192          /* as the client's buffer */


typedef struct {
    int         rc;             /* 0 done, 1 wants more, -1 error */
    int         status;
    int         state;
    size_t      nbody;
    uint8_t     body[1 << 16];
} fuzz_out_t;


static void
fuzz_field(void *arg, const char *line, size_t n)
{
    /* the line as given must end in LF and hold a colon */
    if (n == 0 || line[n - 1] != '\n' || memchr(line, ':', n) == NULL) {
        abort();
    }
}


static void
fuzz_run(const uint8_t *data, size_t size, size_t step, fuzz_out_t *o)
{
    static uint8_t  buf[FUZZ_BUF];
    size_t          have, off, n, len;
    ssize_t         used;
    const char     *d;
    mst_http1_t     h;

    memset(o, 0, offsetof(fuzz_out_t, body));
    mst_http1_init(&h);
    have = 0;
    off = 0;
    o->rc = 1;

    while (off < size || have > 0) {
        n = size - off;
        if (n > step) {
            n = step;
        }
        if (n > FUZZ_BUF - have) {
            n = FUZZ_BUF - have;
        }
        memcpy(buf + have, data + off, n);
        have += n;
        off += n;

        for ( ;; ) {
            if (h.state == MST_HTTP1_HEAD) {
                used = mst_http1_head(&h, (char *) buf, have, fuzz_field,
                                      NULL);
            } else {
                used = mst_http1_body(&h, (char *) buf, have, &d, &len);
                if (used > 0 && len > 0) {
                    if (d < (char *) buf || d + len > (char *) buf + have
                        || len > (size_t) used)
                    {
                        abort();    /* body bytes outside what was used */
                    }
                    if (o->nbody + len <= sizeof(o->body)) {
                        memcpy(o->body + o->nbody, d, len);
                    }
                    o->nbody += len;
                }
            }

            if (used < 0) {
                if (h.error == NULL) {
                    abort();        /* an error says why */
                }
                o->rc = -1;
                goto out;
            }
            if ((size_t) used > have) {
                abort();
            }
            if (used == 0) {
                break;
            }

            memmove(buf, buf + used, have - (size_t) used);
            have -= (size_t) used;

            if (h.state == MST_HTTP1_DONE) {
                o->rc = 0;
                goto out;
            }
        }

        if (have == FUZZ_BUF || (off == size && n == 0)) {
            break;                  /* full without progress, or no more */
        }
        if (off == size && have > 0) {
            break;
        }
    }

    if (mst_http1_eof(&h)) {
        o->rc = 0;
    }

out:
    o->status = h.status;
    o->state = h.state;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t             step;
    static fuzz_out_t  whole, pieces;

    if (size < 1) {
        return 0;
    }

    step = (size_t) data[0] % 17 + 1;
    data++;
    size--;

    fuzz_run(data, size, size ? size : 1, &whole);
    fuzz_run(data, size, step, &pieces);

    /*
     * The whole input at once and in pieces agree, unless the head did
     * not fit the buffer (then only the piecewise run could stop early).
     */
    if (size <= FUZZ_BUF
        && (whole.rc != pieces.rc || whole.status != pieces.status
            || whole.state != pieces.state || whole.nbody != pieces.nbody
            || memcmp(whole.body, pieces.body,
                      whole.nbody < sizeof(whole.body) ? whole.nbody
                                                       : sizeof(whole.body))
               != 0))
    {
        abort();
    }

    return 0;
}
