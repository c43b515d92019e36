/*
 * Copyright (C) Maestro authors
 */

#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/random.h>

#include "mst_common.h"


const char *
mst_strerror(int rc)
{
    switch (rc) {
    case MST_OK:         return "success";
    case MST_ERROR:      return "failure";
    case MST_NOTFOUND:   return "not found";
    case MST_MAPFULL:    return "the store is full (maestro_store_size)";
    case MST_EIO:        return "storage I/O error";
    case MST_EINVAL:     return "invalid argument";
    case MST_ENOMEM:     return "out of memory";
    case MST_CONFLICT:   return "lease lost";
    case MST_EXISTS:     return "already exists";
    case MST_ETIMEDOUT:  return "timed out";
    case MST_ECANCELLED: return "cancelled";
    case MST_EUPSTREAM:  return "upstream failed";
    case MST_EDENIED:    return "denied";
    case MST_ECRYPT:     return "sealed record cannot be opened";
    default:             return "unknown error";
    }
}


int64_t
mst_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
mst_mono_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
mst_id_new(char *buf)
{
    uint32_t  rnd;

    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd)) {
        rnd = (uint32_t) (mst_mono_ms() * 2654435761u) ^ (uint32_t) getpid();
    }

    snprintf(buf, MST_ID_LEN + 1, "wf_%012llx%08x",
             (unsigned long long) (mst_now_ms() & 0xffffffffffffLL), rnd);
}


int
mst_id_valid(const char *s, size_t len)
{
    size_t  i;

    if (len != MST_ID_LEN || s[0] != 'w' || s[1] != 'f' || s[2] != '_') {
        return 0;
    }

    for (i = 3; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


int
mst_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list  args;

    if (err != NULL && errlen > 0) {
        va_start(args, fmt);
        vsnprintf(err, errlen, fmt, args);
        va_end(args);
    }

    return rc;
}


int
mst_utf8_valid(const char *s, size_t len)
{
    const unsigned char  *p, *end;
    uint32_t              cp;
    int                   n, i;

    if (len == 0) {
        /* s may be NULL (wslay's empty message): NULL + 0 is undefined */
        return 1;
    }

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        if ((*p & 0xe0) == 0xc0) {
            n = 1; cp = *p & 0x1f;
        } else if ((*p & 0xf0) == 0xe0) {
            n = 2; cp = *p & 0x0f;
        } else if ((*p & 0xf8) == 0xf0) {
            n = 3; cp = *p & 0x07;
        } else {
            return 0;
        }

        if (end - p <= n) {
            return 0;
        }

        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3f);
        }

        /* overlong forms, surrogates, beyond Unicode */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800)
            || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff))
        {
            return 0;
        }

        p += n + 1;
    }

    return 1;
}


json_t *
mst_json_path(json_t *root, const char *path)
{
    char        key[128];
    const char *dot;
    size_t      len;
    json_t     *cur;

    cur = root;

    while (cur != NULL && *path != '\0') {
        dot = strchr(path, '.');
        len = dot ? (size_t) (dot - path) : strlen(path);

        if (len == 0 || len >= sizeof(key)) {
            return NULL;
        }

        memcpy(key, path, len);
        key[len] = '\0';

        if (json_is_object(cur)) {
            cur = json_object_get(cur, key);

        } else if (json_is_array(cur) && key[0] >= '0' && key[0] <= '9') {
            cur = json_array_get(cur, (size_t) strtoul(key, NULL, 10));

        } else {
            return NULL;
        }

        path += len + (dot ? 1 : 0);
    }

    return cur;
}
