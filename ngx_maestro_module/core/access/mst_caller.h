/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Who is calling: the first stage of the admission path, the same for
 * every way in (REST, stream, /v1, WebSocket). With auth off every
 * caller is the local caller (whoever reached the listening socket).
 * With auth on a caller is an API key (its owner and team), a JWT (its
 * "sub" and team claim) or the admin credential; nobody else gets in.
 *
 * The user a request is for (usage, a session's workflows) is part of
 * the caller: fixed by the credential (a key's owner, a token's "sub")
 * or the connection (a WebSocket session's URL), else claimed by the
 * request body ("user_id", or "user" on /v1). Only the local and the
 * admin caller may claim a user; a tenant caller is its own user.
 *
 * A caller is a plain value: copy it, keep it with the request.
 */

#ifndef _MST_CALLER_H_INCLUDED_
#define _MST_CALLER_H_INCLUDED_

#include "mst_common.h"

#define MST_CALLER_USER_MAX  128    /* bytes of a user id, a team */
#define MST_CALLER_KEY_MAX   32     /* bytes of a key id */

typedef enum {
    MST_CALLER_LOCAL = 0,           /* auth off: anyone who connects */
    MST_CALLER_KEY,                 /* a virtual API key */
    MST_CALLER_JWT,                 /* a verified bearer token */
    MST_CALLER_ADMIN                /* the admin credential */
} mst_caller_kind_t;

typedef struct {
    mst_caller_kind_t   kind;
    char                user_id[MST_CALLER_USER_MAX + 1];
    char                team[MST_CALLER_USER_MAX + 1];     /* or "" */
    char                key_id[MST_CALLER_KEY_MAX + 1];    /* or "" */
    unsigned            has_user:1;
    unsigned            fixed:1;    /* by the credential or connection */
} mst_caller_t;

/* identify, with auth off: the local caller, no user yet */
void mst_caller_local(mst_caller_t *c);

/*
 * A tenant caller (MST_CALLER_KEY or MST_CALLER_JWT): its user, team
 * (may be NULL) and key id (may be NULL) are fixed. MST_EINVAL: a user
 * or team not 1..MST_CALLER_USER_MAX bytes, or a NUL in one.
 */
int mst_caller_tenant(mst_caller_t *c, mst_caller_kind_t kind,
    const char *user, size_t ulen, const char *team, size_t tlen,
    const char *key_id, char *err, size_t errlen);

/* the admin caller: sees everything, may claim any user */
void mst_caller_admin(mst_caller_t *c);

/* the caller may read and change data of every user */
int mst_caller_is_admin(const mst_caller_t *c);

/*
 * The caller may see a record owned by owner (NULL or "": no owner):
 * local and admin callers see all; a tenant sees its own user's only.
 */
int mst_caller_may_see(const mst_caller_t *c, const char *owner);

/*
 * The connection names the user (a session): the body cannot change it.
 * A tenant caller may only open its own user's session (MST_EDENIED).
 */
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

/* "local", "key", "jwt", "admin": for logs */
const char *mst_caller_kind_name(const mst_caller_t *c);

#endif /* _MST_CALLER_H_INCLUDED_ */
