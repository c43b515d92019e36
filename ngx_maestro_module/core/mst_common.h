/*
 * Copyright (C) Maestro authors
 */

/*
 * Shared definitions of the nginx-free core: return codes, time, ids.
 * Nothing in core/ includes an nginx header: the glue files
 * (ngx_maestro_module/ngx_http_maestro_*.c) translate between nginx and
 * core (README.md, "How it works", the layout paragraph).
 */

#ifndef _MST_COMMON_H_INCLUDED_
#define _MST_COMMON_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* return codes: 0 or negative, namespaced like LMDB's */
#define MST_OK           0
#define MST_ERROR      (-30800)   /* generic failure */
#define MST_NOTFOUND   (-30801)   /* key or id does not exist */
#define MST_MAPFULL    (-30802)   /* LMDB map full: raise maestro_store_size */
#define MST_EIO        (-30803)   /* storage I/O error */
#define MST_EINVAL     (-30804)   /* invalid argument or malformed data */
#define MST_ENOMEM     (-30805)   /* out of memory */
#define MST_CONFLICT   (-30806)   /* lease lost / fencing check failed */
#define MST_EXISTS     (-30807)   /* key already exists */
#define MST_ETIMEDOUT  (-30808)   /* deadline passed */
#define MST_ECANCELLED (-30809)   /* cancelled */
#define MST_EUPSTREAM  (-30810)   /* LLM / HTTP upstream failed */
#define MST_EDENIED    (-30811)   /* credential missing, wrong or not
                                     allowed to do this */
#define MST_ECRYPT     (-30812)   /* a sealed store record cannot be
                                     opened: unknown key id, altered,
                                     or no key configured */

#define MST_ERRLEN       256      /* size of the err buffers callers pass */

#define MST_ID_LEN       23       /* "wf_" + 12 hex ms + 8 hex random */

const char *mst_strerror(int rc);

/* wall clock in milliseconds since the epoch */
int64_t mst_now_ms(void);

/* monotonic clock in milliseconds */
int64_t mst_mono_ms(void);

/*
 * A new workflow id: "wf_" + 12 hex digits of the creation time in ms +
 * 8 random hex digits, so ids sort by creation time. buf: MST_ID_LEN + 1.
 */
void mst_id_new(char *buf);

/* whether s looks like an id made by mst_id_new() */
int mst_id_valid(const char *s, size_t len);

/* printf into err, truncating; returns rc, for "return mst_err(...)" */
int mst_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Whether the len bytes at s are valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF).
 */
int mst_utf8_valid(const char *s, size_t len);

/*
 * Look up a dotted path ("plan.steps", "review.score") in a JSON object;
 * NULL when absent. The result is borrowed.
 */
json_t *mst_json_path(json_t *root, const char *path);

#endif /* _MST_COMMON_H_INCLUDED_ */
