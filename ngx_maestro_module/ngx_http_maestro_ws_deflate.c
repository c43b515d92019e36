/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * permessage-deflate (RFC 7692) for the WebSocket endpoints, where it
 * pays: messages of NGX_HTTP_MAESTRO_WS_DEFLATE_MIN bytes or more (token
 * fragments and status updates are smaller and go as they are).
 *
 * Both directions run without context takeover (the agreement says
 * server_no_context_takeover and client_no_context_takeover), so every
 * message is compressed on its own: nothing is kept per connection, and
 * one deflate and one inflate stream per worker serve every connection
 * (the event loop is single-threaded), reset between messages. An offer
 * that limits the server's window (server_max_window_bits) is declined:
 * the extension is optional, and messages then go uncompressed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <zlib.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_ws_deflate.h"
#include "mst_inflate.h"


#define NGX_HTTP_MAESTRO_WS_DEFLATE_MIN  512


static z_stream   ngx_http_maestro_ws_zd;
static z_stream   ngx_http_maestro_ws_zi;
static ngx_uint_t ngx_http_maestro_ws_zd_ready;
static ngx_uint_t ngx_http_maestro_ws_zi_ready;


static ngx_str_t  ngx_http_maestro_ws_deflate_answer =
    ngx_string("permessage-deflate; server_no_context_takeover; "
               "client_no_context_takeover");


/* whether the handshake's offer can be taken; the answer's value if so */
ngx_str_t *
ngx_http_maestro_ws_deflate_offer(ngx_table_elt_t *h)
{
    u_char  *p, *end, *ext, *semi;

    if (h == NULL) {
        return NULL;
    }

    p = h->value.data;
    end = p + h->value.len;

    /* offers are separated by commas; each is "name; param; param" */

    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',')) {
            p++;
        }

        ext = p;

        while (p < end && *p != ',') {
            p++;
        }

        semi = ngx_strlchr(ext, p, ';');

        if ((size_t) ((semi ? semi : p) - ext) >= sizeof("permessage-deflate")
                                                   - 1
            && ngx_strncasecmp(ext, (u_char *) "permessage-deflate",
                               sizeof("permessage-deflate") - 1) == 0
            && ngx_strlcasestrn(ext, p, (u_char *) "server_max_window_bits",
                                sizeof("server_max_window_bits") - 2)
               == NULL)
        {
            return &ngx_http_maestro_ws_deflate_answer;
        }
    }

    return NULL;
}


/* NGX_OK: *out (ngx_alloc) is the compressed message; else send as is */
ngx_int_t
ngx_http_maestro_ws_deflate(const u_char *in, size_t len, u_char **out,
    size_t *outlen)
{
    int        rc;
    u_char    *buf;
    size_t     cap;
    z_stream  *z = &ngx_http_maestro_ws_zd;

    if (len < NGX_HTTP_MAESTRO_WS_DEFLATE_MIN) {
        return NGX_DECLINED;
    }

    if (!ngx_http_maestro_ws_zd_ready) {
        if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                         Z_DEFAULT_STRATEGY)
            != Z_OK)
        {
            return NGX_DECLINED;
        }
        ngx_http_maestro_ws_zd_ready = 1;

    } else {
        deflateReset(z);
    }

    cap = deflateBound(z, len) + 16;

    buf = ngx_alloc(cap, ngx_cycle->log);
    if (buf == NULL) {
        return NGX_DECLINED;
    }

    z->next_in = (u_char *) in;
    z->avail_in = len;
    z->next_out = buf;
    z->avail_out = cap;

    rc = deflate(z, Z_SYNC_FLUSH);

    if (rc != Z_OK || z->avail_in != 0 || cap - z->avail_out < 4) {
        ngx_free(buf);
        return NGX_DECLINED;
    }

    /* RFC 7692 7.2.1: without the final empty block's 00 00 ff ff */
    *outlen = cap - z->avail_out - 4;

    if (*outlen >= len) {
        /* it did not pay */
        ngx_free(buf);
        return NGX_DECLINED;
    }

    *out = buf;

    return NGX_OK;
}


/*
 * NGX_OK: *out (malloc, ngx_free() it) is the message; NGX_DECLINED:
 * longer than max; NGX_ERROR: not a valid deflate stream.
 */
ngx_int_t
ngx_http_maestro_ws_inflate(const u_char *in, size_t len, size_t max,
    u_char **out, size_t *outlen)
{
    int        rc;
    z_stream  *z = &ngx_http_maestro_ws_zi;

    if (!ngx_http_maestro_ws_zi_ready) {
        if (inflateInit2(z, -15) != Z_OK) {
            return NGX_ERROR;
        }
        ngx_http_maestro_ws_zi_ready = 1;
    }

    /* the bytes are the client's: core parses them (mst_inflate.c) */
    rc = mst_inflate_msg(z, in, len, max, out, outlen);

    return rc == MST_OK ? NGX_OK
           : rc == MST_INFLATE_TOO_BIG ? NGX_DECLINED : NGX_ERROR;
}
