/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_caller.h */

#include <string.h>

#include "mst_caller.h"


void
mst_caller_local(mst_caller_t *c)
{
    memset(c, 0, sizeof(mst_caller_t));
    c->kind = MST_CALLER_LOCAL;
}


void
mst_caller_admin(mst_caller_t *c)
{
    memset(c, 0, sizeof(mst_caller_t));
    c->kind = MST_CALLER_ADMIN;
}


/* a user id or team: 1..MST_CALLER_USER_MAX bytes, no NUL */
static int
mst_caller_name(char *dst, const char *src, size_t len, const char *what,
    char *err, size_t errlen)
{
    if (len == 0 || len > MST_CALLER_USER_MAX
        || memchr(src, '\0', len) != NULL)
    {
        return mst_err(err, errlen, MST_EINVAL, "a %s is 1..%d characters",
                       what, MST_CALLER_USER_MAX);
    }

    memcpy(dst, src, len);
    dst[len] = '\0';

    return MST_OK;
}


static int
mst_caller_set(mst_caller_t *c, const char *user, size_t len, char *err,
    size_t errlen)
{
    int  rc;

    rc = mst_caller_name(c->user_id, user, len, "user id", err, errlen);
    if (rc == MST_OK) {
        c->has_user = 1;
    }

    return rc;
}


int
mst_caller_tenant(mst_caller_t *c, mst_caller_kind_t kind,
    const char *user, size_t ulen, const char *team, size_t tlen,
    const char *key_id, char *err, size_t errlen)
{
    int  rc;

    memset(c, 0, sizeof(mst_caller_t));
    c->kind = kind;

    rc = mst_caller_set(c, user, ulen, err, errlen);
    if (rc != MST_OK) {
        return rc;
    }

    if (team != NULL) {
        rc = mst_caller_name(c->team, team, tlen, "team", err, errlen);
        if (rc != MST_OK) {
            return rc;
        }
    }

    if (key_id != NULL) {
        if (strlen(key_id) > MST_CALLER_KEY_MAX) {
            return mst_err(err, errlen, MST_EINVAL, "a key id is 1..%d "
                           "characters", MST_CALLER_KEY_MAX);
        }

        strcpy(c->key_id, key_id);
    }

    c->fixed = 1;

    return MST_OK;
}


int
mst_caller_is_admin(const mst_caller_t *c)
{
    return c->kind == MST_CALLER_ADMIN;
}


static int
mst_caller_is_tenant(const mst_caller_t *c)
{
    return c->kind == MST_CALLER_KEY || c->kind == MST_CALLER_JWT;
}


int
mst_caller_may_see(const mst_caller_t *c, const char *owner)
{
    if (!mst_caller_is_tenant(c)) {
        return 1;
    }

    return owner != NULL && strcmp(owner, c->user_id) == 0;
}


int
mst_caller_session(mst_caller_t *c, const char *user, size_t len,
    char *err, size_t errlen)
{
    int  rc;

    if (mst_caller_is_tenant(c)) {
        if (len != strlen(c->user_id) || memcmp(user, c->user_id, len) != 0) {
            return mst_err(err, errlen, MST_EDENIED,
                           "not this caller's session");
        }

        return MST_OK;
    }

    rc = mst_caller_set(c, user, len, err, errlen);
    if (rc == MST_OK) {
        c->fixed = 1;
    }

    return rc;
}


int
mst_caller_claim(mst_caller_t *c, const char *user, size_t len,
    char *err, size_t errlen)
{
    if (c->fixed || user == NULL) {
        return MST_OK;
    }

    return mst_caller_set(c, user, len, err, errlen);
}


const char *
mst_caller_user(const mst_caller_t *c)
{
    return c->has_user ? c->user_id : NULL;
}


const char *
mst_caller_kind_name(const mst_caller_t *c)
{
    switch (c->kind) {
    case MST_CALLER_KEY:    return "key";
    case MST_CALLER_JWT:    return "jwt";
    case MST_CALLER_ADMIN:  return "admin";
    default:                return "local";
    }
}
