/*
 * Copyright (C) Maestro authors
 */

/*
 * A permessage-deflate message inflated (see mst_inflate.h).
 */

#include <stdlib.h>
#include <string.h>

#include "mst_inflate.h"


int
mst_inflate_msg(z_stream *z, const uint8_t *in, size_t len, size_t max,
    uint8_t **out, size_t *outlen)
{
    int       rc, zrc;
    size_t    cap, have;
    uint8_t  *src, *buf, *nb;

    if (len > (size_t) (uInt) -1 - 4) {
        return MST_INFLATE_TOO_BIG;
    }

    inflateReset(z);

    /* the message and the 00 00 ff ff its sender removed */
    src = malloc(len + 4);
    if (src == NULL) {
        return MST_ENOMEM;
    }

    if (len) {
        memcpy(src, in, len);
    }

    src[len] = 0x00;
    src[len + 1] = 0x00;
    src[len + 2] = 0xff;
    src[len + 3] = 0xff;

    cap = len * 4 > 1024 ? len * 4 : 1024;
    cap = cap < max + 1 ? cap : max + 1;

    buf = malloc(cap);
    if (buf == NULL) {
        free(src);
        return MST_ENOMEM;
    }

    z->next_in = src;
    z->avail_in = (uInt) (len + 4);
    have = 0;

    for ( ;; ) {

        if (have == cap) {
            if (cap > max) {
                rc = MST_INFLATE_TOO_BIG;
                goto failed;
            }

            /* grow, up to the limit and one byte more (to tell) */
            cap = cap * 2 < max + 1 ? cap * 2 : max + 1;

            nb = realloc(buf, cap);
            if (nb == NULL) {
                rc = MST_ENOMEM;
                goto failed;
            }

            buf = nb;
        }

        z->next_out = buf + have;
        z->avail_out = (uInt) (cap - have);

        zrc = inflate(z, Z_SYNC_FLUSH);

        have = cap - z->avail_out;

        if (have > max) {
            rc = MST_INFLATE_TOO_BIG;
            goto failed;
        }

        if (zrc == Z_STREAM_END) {
            break;
        }

        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = MST_EINVAL;
            goto failed;
        }

        if (z->avail_in == 0 && z->avail_out > 0) {
            break;
        }

        if (zrc == Z_BUF_ERROR && z->avail_out > 0) {
            /* no progress with input left: a broken stream */
            rc = MST_EINVAL;
            goto failed;
        }
    }

    free(src);

    *out = buf;
    *outlen = have;

    return MST_OK;

failed:

    free(src);
    free(buf);

    return rc;
}
