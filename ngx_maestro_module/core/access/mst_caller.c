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


static int
mst_caller_set(mst_caller_t *c, const char *user, size_t len, char *err,
    size_t errlen)
{
    if (len == 0 || len > MST_CALLER_USER_MAX
        || memchr(user, '\0', len) != NULL)
    {
        return mst_err(err, errlen, MST_EINVAL,
                       "a user id is 1..%d characters",
                       MST_CALLER_USER_MAX);
    }

    memcpy(c->user_id, user, len);
    c->user_id[len] = '\0';
    c->has_user = 1;

    return MST_OK;
}


int
mst_caller_session(mst_caller_t *c, const char *user, size_t len,
    char *err, size_t errlen)
{
    int  rc;

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
    return "local";
}
