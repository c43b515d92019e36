/*
 * Copyright (C) Maestro authors
 */

/*
 * Web origins: checked, made canonical, matched (see mst_cors.h).
 */

#include <string.h>

#include "mst_cors.h"


static int
mst_cors_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}


static int
mst_cors_alpha(int c)
{
    c = mst_cors_lower(c);

    return c >= 'a' && c <= 'z';
}


static int
mst_cors_digit(int c)
{
    return c >= '0' && c <= '9';
}


int
mst_cors_origin(const char *s, size_t len, char *out, size_t outlen,
    char *err, size_t errlen)
{
    size_t       i, o, h, hlen, plen, slen;
    unsigned     port;
    const char  *p;

    if (outlen < MST_CORS_ORIGIN_MAX || len >= MST_CORS_ORIGIN_MAX) {
        return mst_err(err, errlen, MST_EINVAL, "longer than %d bytes",
                       MST_CORS_ORIGIN_MAX - 1);
    }

    if (len == 4 && memcmp(s, "null", 4) == 0) {
        return mst_err(err, errlen, MST_EINVAL, "\"null\" is the origin of "
                       "any sandboxed page and cannot be allowed");
    }

    /* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */

    for (i = 0; i < len && s[i] != ':'; i++) {
        if (!(mst_cors_alpha(s[i])
              || (i > 0 && (mst_cors_digit(s[i]) || s[i] == '+'
                            || s[i] == '-' || s[i] == '.'))))
        {
            return mst_err(err, errlen, MST_EINVAL,
                           "an origin is scheme://host[:port]");
        }
    }

    slen = i;

    if (slen == 0 || len - i < 3 || memcmp(s + i, "://", 3) != 0) {
        return mst_err(err, errlen, MST_EINVAL,
                       "an origin is scheme://host[:port]");
    }

    for (o = 0; o < slen; o++) {
        out[o] = (char) mst_cors_lower(s[o]);
    }

    memcpy(out + o, "://", 3);
    o += 3;

    /* host: a name of letters, digits, "-", "." and "_", or [IPv6] */

    h = i + 3;
    p = s + h;
    hlen = 0;

    if (h < len && s[h] == '[') {
        for (hlen = 1; h + hlen < len && s[h + hlen] != ']'; hlen++) {
            if (!(mst_cors_digit(p[hlen]) || p[hlen] == ':'
                  || p[hlen] == '.'
                  || (mst_cors_lower(p[hlen]) >= 'a'
                      && mst_cors_lower(p[hlen]) <= 'f')))
            {
                return mst_err(err, errlen, MST_EINVAL,
                               "a bad IPv6 address");
            }
        }

        if (h + hlen == len || hlen < 3) {
            return mst_err(err, errlen, MST_EINVAL, "a bad IPv6 address");
        }

        hlen++;                     /* the "]" */

    } else {
        while (h + hlen < len
               && (mst_cors_alpha(p[hlen]) || mst_cors_digit(p[hlen])
                   || p[hlen] == '-' || p[hlen] == '.' || p[hlen] == '_'))
        {
            hlen++;
        }

        if (hlen == 0 || p[0] == '.' || p[hlen - 1] == '.') {
            return mst_err(err, errlen, MST_EINVAL, "no host name");
        }
    }

    for (i = 0; i < hlen; i++) {
        out[o++] = (char) mst_cors_lower(p[i]);
    }

    i = h + hlen;

    /* [":" port], 1..65535, no leading zero */

    if (i < len && s[i] == ':') {
        port = 0;

        for (plen = 0; i + 1 + plen < len && mst_cors_digit(s[i + 1 + plen]);
             plen++)
        {
            port = port * 10 + (unsigned) (s[i + 1 + plen] - '0');

            if (port > 65535) {
                break;
            }
        }

        if (plen == 0 || port == 0 || port > 65535 || s[i + 1] == '0') {
            return mst_err(err, errlen, MST_EINVAL,
                           "a port is 1..65535");
        }

        /* the default port is not part of the serialisation */
        if (!((slen == 4 && memcmp(out, "http", 4) == 0 && port == 80)
              || (slen == 5 && memcmp(out, "https", 5) == 0 && port == 443)))
        {
            memcpy(out + o, s + i, plen + 1);
            o += plen + 1;
        }

        i += 1 + plen;
    }

    if (i < len) {
        return mst_err(err, errlen, MST_EINVAL,
                       s[i] == '/' ? "an origin has no path, not even \"/\""
                                   : "an origin is scheme://host[:port]");
    }

    out[o] = '\0';

    return MST_OK;
}


int
mst_cors_allowed(const char *const *list, size_t n, int any,
    const char *origin, size_t len)
{
    char    canon[MST_CORS_ORIGIN_MAX];
    size_t  i;

    if (mst_cors_origin(origin, len, canon, sizeof(canon), NULL, 0)
        != MST_OK)
    {
        return 0;
    }

    if (any) {
        return 1;
    }

    for (i = 0; i < n; i++) {
        if (strcmp(list[i], canon) == 0) {
            return 1;
        }
    }

    return 0;
}
