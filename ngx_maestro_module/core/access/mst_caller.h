/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Who is calling: the first stage of the admission path, the same for
 * every way in (REST, stream, /v1, WebSocket). Today there is no
 * authentication, so every caller is the local caller (whoever reached
 * the listening socket) and no one is refused. API keys and JWT will
 * add kinds of caller here, in this one place.
 *
 * The user a request is for (usage, a session's workflows) is part of
 * the caller: fixed by the connection (a WebSocket session's URL), else
 * claimed by the request body ("user_id", or "user" on /v1). With auth
 * off any caller may claim any user; a key's user will take precedence.
 *
 * A caller is a plain value: copy it, keep it with the request.
 */

#ifndef _MST_CALLER_H_INCLUDED_
#define _MST_CALLER_H_INCLUDED_

#include "mst_common.h"

#define MST_CALLER_USER_MAX  128    /* bytes of a user id */

typedef enum {
    MST_CALLER_LOCAL = 0            /* auth off: anyone who connects */
} mst_caller_kind_t;

typedef struct {
    mst_caller_kind_t   kind;
    char                user_id[MST_CALLER_USER_MAX + 1];
    unsigned            has_user:1;
    unsigned            fixed:1;    /* by the connection, not the body */
} mst_caller_t;

/* identify, with auth off: the local caller, no user yet */
void mst_caller_local(mst_caller_t *c);

/* the connection names the user (a session): the body cannot change it */
int mst_caller_session(mst_caller_t *c, const char *user, size_t len,
    char *err, size_t errlen);

/*
 * The user the request body names (user may be NULL: none). Ignored when
 * the connection fixed one. MST_EINVAL: not 1..MST_CALLER_USER_MAX bytes
 * or contains a NUL (the caller keeps no user).
 */
int mst_caller_claim(mst_caller_t *c, const char *user, size_t len,
    char *err, size_t errlen);

/* the user id, or NULL */
const char *mst_caller_user(const mst_caller_t *c);

/* "local": for logs */
const char *mst_caller_kind_name(const mst_caller_t *c);

#endif /* _MST_CALLER_H_INCLUDED_ */
