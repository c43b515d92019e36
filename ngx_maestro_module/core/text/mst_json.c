/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_json.h. One buffer that doubles; strings are copied in
 * runs between the bytes that need escaping; integers are converted
 * backwards into a small array. Strings with bytes >= 0x80 are checked to
 * be UTF-8, as jansson's dumper does, so no invalid text is ever stored.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mst_json.h"


#define MST_JSON_MAX_DEPTH  2048


typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} mst_json_buf_t;


static int mst_json_value(mst_json_buf_t *b, const json_t *json,
    unsigned depth);


static int
mst_json_grow(mst_json_buf_t *b, size_t more)
{
    char    *p;
    size_t   cap;

    cap = b->cap;

    while (cap - b->len < more + 1) {
        cap *= 2;
    }

    p = realloc(b->p, cap);
    if (p == NULL) {
        return -1;
    }

    b->p = p;
    b->cap = cap;

    return 0;
}


static inline int
mst_json_put(mst_json_buf_t *b, const char *s, size_t n)
{
    if (b->cap - b->len < n + 1 && mst_json_grow(b, n) != 0) {
        return -1;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;

    return 0;
}


static inline int
mst_json_putc(mst_json_buf_t *b, char c)
{
    if (b->cap - b->len < 2 && mst_json_grow(b, 1) != 0) {
        return -1;
    }

    b->p[b->len++] = c;

    return 0;
}


static int
mst_json_string(mst_json_buf_t *b, const char *s, size_t n)
{
    size_t          i, run;
    char            esc[7];
    unsigned char   c, high;
    static const char  hex[] = "0123456789ABCDEF";

    high = 0;

    if (mst_json_putc(b, '"') != 0) {
        return -1;
    }

    run = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];
        high |= c;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }

        if (mst_json_put(b, s + run, i - run) != 0) {
            return -1;
        }

        run = i + 1;
        esc[0] = '\\';

        switch (c) {
        case '"':  esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;

        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];

            if (mst_json_put(b, esc, 6) != 0) {
                return -1;
            }

            continue;
        }

        if (mst_json_put(b, esc, 2) != 0) {
            return -1;
        }
    }

    if ((high & 0x80) && !mst_utf8_valid(s, n)) {
        return -1;
    }

    if (mst_json_put(b, s + run, n - run) != 0) {
        return -1;
    }

    return mst_json_putc(b, '"');
}


static int
mst_json_integer(mst_json_buf_t *b, json_int_t v)
{
    char                 buf[24], *p;
    unsigned long long   u;

    p = buf + sizeof(buf);
    u = v < 0 ? 0ULL - (unsigned long long) v : (unsigned long long) v;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);

    if (v < 0) {
        *--p = '-';
    }

    return mst_json_put(b, p, (size_t) (buf + sizeof(buf) - p));
}


static int
mst_json_real(mst_json_buf_t *b, double v)
{
    int    n;
    char   buf[40], *e, *d, *s;

    /* as jansson: 17 significant digits, and always a '.' or an 'e' */

    n = snprintf(buf, sizeof(buf), "%.17g", v);
    if (n <= 0 || (size_t) n >= sizeof(buf) - 3) {
        return -1;
    }

    if (strspn(buf, "-+.0123456789e") != (size_t) n) {
        return -1;              /* inf, nan: not JSON */
    }

    e = strchr(buf, 'e');

    if (e == NULL) {
        if (strchr(buf, '.') == NULL) {
            buf[n++] = '.';
            buf[n++] = '0';
        }

        return mst_json_put(b, buf, (size_t) n);
    }

    /* the exponent without '+' and leading zeros: 3e20, 1e-5 */

    d = e + 1;

    if (*d == '-') {
        d++;
    }

    s = (*d == '+') ? d + 1 : d;

    while (*s == '0' && s[1] != '\0') {
        s++;
    }

    memmove(d, s, strlen(s) + 1);

    return mst_json_put(b, buf, strlen(buf));
}


static int
mst_json_value(mst_json_buf_t *b, const json_t *json, unsigned depth)
{
    size_t       i, n;
    void        *it;
    const char  *key;

    switch (json_typeof(json)) {

    case JSON_OBJECT:
        if (depth >= MST_JSON_MAX_DEPTH || mst_json_putc(b, '{') != 0) {
            return -1;
        }

        i = 0;

        for (it = json_object_iter((json_t *) json);
             it != NULL;
             it = json_object_iter_next((json_t *) json, it))
        {
            key = json_object_iter_key(it);

            if ((i++ > 0 && mst_json_putc(b, ',') != 0)
                || mst_json_string(b, key, json_object_iter_key_len(it)) != 0
                || mst_json_putc(b, ':') != 0
                || mst_json_value(b, json_object_iter_value(it), depth + 1)
                   != 0)
            {
                return -1;
            }
        }

        return mst_json_putc(b, '}');

    case JSON_ARRAY:
        if (depth >= MST_JSON_MAX_DEPTH || mst_json_putc(b, '[') != 0) {
            return -1;
        }

        n = json_array_size(json);

        for (i = 0; i < n; i++) {
            if ((i > 0 && mst_json_putc(b, ',') != 0)
                || mst_json_value(b, json_array_get(json, i), depth + 1)
                   != 0)
            {
                return -1;
            }
        }

        return mst_json_putc(b, ']');

    case JSON_STRING:
        return mst_json_string(b, json_string_value(json),
                               json_string_length(json));

    case JSON_INTEGER:
        return mst_json_integer(b, json_integer_value(json));

    case JSON_REAL:
        return mst_json_real(b, json_real_value(json));

    case JSON_TRUE:
        return mst_json_put(b, "true", 4);

    case JSON_FALSE:
        return mst_json_put(b, "false", 5);

    case JSON_NULL:
        return mst_json_put(b, "null", 4);
    }

    return -1;
}


char *
mst_json_dump(const json_t *json, size_t *len)
{
    mst_json_buf_t  b;

    if (json == NULL) {
        return NULL;
    }

    b.cap = 512;
    b.len = 0;
    b.p = malloc(b.cap);

    if (b.p == NULL) {
        return NULL;
    }

    if (mst_json_value(&b, json, 0) != 0) {
        free(b.p);
        return NULL;
    }

    b.p[b.len] = '\0';

    if (len != NULL) {
        *len = b.len;
    }

    return b.p;
}


/* the syntax check: a recursive descent over the bytes */

typedef struct {
    const unsigned char  *p;
    const unsigned char  *end;
    unsigned              depth;
} mst_json_scan_t;


static int mst_json_scan_value(mst_json_scan_t *sc);


static void
mst_json_scan_ws(mst_json_scan_t *sc)
{
    while (sc->p < sc->end
           && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n'
               || *sc->p == '\r'))
    {
        sc->p++;
    }
}


static int
mst_json_scan_string(mst_json_scan_t *sc)
{
    int  i;

    sc->p++;                            /* the opening quote */

    while (sc->p < sc->end) {
        if (*sc->p == '"') {
            sc->p++;
            return 0;
        }

        if (*sc->p < 0x20) {
            return -1;
        }

        if (*sc->p++ != '\\') {
            continue;
        }

        if (sc->p >= sc->end) {
            return -1;
        }

        if (*sc->p == 'u') {
            for (i = 1; i <= 4; i++) {
                if (sc->p + i >= sc->end || !isxdigit(sc->p[i])) {
                    return -1;
                }
            }
            sc->p += 5;

        } else if (strchr("\"\\/bfnrt", *sc->p) != NULL && *sc->p) {
            sc->p++;

        } else {
            return -1;
        }
    }

    return -1;
}


static int
mst_json_scan_number(mst_json_scan_t *sc)
{
    const unsigned char  *s;

    if (sc->p < sc->end && *sc->p == '-') {
        sc->p++;
    }

    s = sc->p;
    while (sc->p < sc->end && isdigit(*sc->p)) {
        sc->p++;
    }

    if (sc->p == s || (*s == '0' && sc->p - s > 1)) {
        return -1;
    }

    if (sc->p < sc->end && *sc->p == '.') {
        s = ++sc->p;
        while (sc->p < sc->end && isdigit(*sc->p)) {
            sc->p++;
        }
        if (sc->p == s) {
            return -1;
        }
    }

    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        sc->p++;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-')) {
            sc->p++;
        }
        s = sc->p;
        while (sc->p < sc->end && isdigit(*sc->p)) {
            sc->p++;
        }
        if (sc->p == s) {
            return -1;
        }
    }

    return 0;
}


static int
mst_json_scan_literal(mst_json_scan_t *sc, const char *word)
{
    size_t  n;

    n = strlen(word);

    if ((size_t) (sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0) {
        return -1;
    }

    sc->p += n;

    return 0;
}


static int
mst_json_scan_container(mst_json_scan_t *sc, unsigned char close)
{
    int  first;

    if (++sc->depth > MST_JSON_MAX_DEPTH) {
        return -1;
    }

    sc->p++;
    first = 1;

    for ( ;; ) {
        mst_json_scan_ws(sc);

        if (sc->p >= sc->end) {
            return -1;
        }

        if (*sc->p == close && first) {
            sc->p++;
            break;
        }

        if (close == '}') {
            if (*sc->p != '"' || mst_json_scan_string(sc) != 0) {
                return -1;
            }

            mst_json_scan_ws(sc);

            if (sc->p >= sc->end || *sc->p++ != ':') {
                return -1;
            }
        }

        if (mst_json_scan_value(sc) != 0) {
            return -1;
        }

        mst_json_scan_ws(sc);

        if (sc->p >= sc->end) {
            return -1;
        }

        if (*sc->p == ',') {
            sc->p++;
            first = 0;
            mst_json_scan_ws(sc);
            if (sc->p < sc->end && *sc->p == close) {
                return -1;      /* a trailing comma */
            }
            continue;
        }

        if (*sc->p++ != close) {
            return -1;
        }

        break;
    }

    sc->depth--;

    return 0;
}


static int
mst_json_scan_value(mst_json_scan_t *sc)
{
    mst_json_scan_ws(sc);

    if (sc->p >= sc->end) {
        return -1;
    }

    switch (*sc->p) {
    case '{':
        return mst_json_scan_container(sc, '}');
    case '[':
        return mst_json_scan_container(sc, ']');
    case '"':
        return mst_json_scan_string(sc);
    case 't':
        return mst_json_scan_literal(sc, "true");
    case 'f':
        return mst_json_scan_literal(sc, "false");
    case 'n':
        return mst_json_scan_literal(sc, "null");
    default:
        return mst_json_scan_number(sc);
    }
}


int
mst_json_object_ok(const char *p, size_t n)
{
    mst_json_scan_t  sc;

    sc.p = (const unsigned char *) p;
    sc.end = sc.p + n;
    sc.depth = 0;

    mst_json_scan_ws(&sc);

    if (sc.p >= sc.end || *sc.p != '{'
        || mst_json_scan_container(&sc, '}') != 0)
    {
        return 0;
    }

    mst_json_scan_ws(&sc);

    return sc.p == sc.end;
}
