/*
 * Copyright (C) Maestro authors
 */

/*
 * One permessage-deflate message (RFC 7692, no context takeover): the
 * bytes a WebSocket client compressed, inflated up to a limit. A parser
 * of outside bytes, so it is core (the fuzzer drives it behind libwslay,
 * tests/fuzz/fuzz_ws.c); the glue keeps the one zlib stream per worker.
 */

#ifndef _MST_INFLATE_H_INCLUDED_
#define _MST_INFLATE_H_INCLUDED_

#include <zlib.h>

#include "mst_common.h"

#define MST_INFLATE_TOO_BIG  1      /* more than max bytes inflated */

/*
 * z: a raw inflate stream (inflateInit2(z, -15)), reset here. MST_OK and
 * *out (malloc()ed, *outlen bytes, at most max); MST_INFLATE_TOO_BIG;
 * MST_EINVAL: not a deflate stream; MST_ENOMEM.
 */
int mst_inflate_msg(z_stream *z, const uint8_t *in, size_t len, size_t max,
    uint8_t **out, size_t *outlen);

#endif /* _MST_INFLATE_H_INCLUDED_ */
