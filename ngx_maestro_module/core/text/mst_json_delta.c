/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_json_delta.h. Recursion is bounded: below
 * MST_JSON_DELTA_DEPTH levels a changed value is replaced whole, and the
 * tree copy copies deeply, so no input makes the stack deep.
 */

#include <stdlib.h>
#include <string.h>

#include "mst_json_delta.h"


#define MST_JSON_DELTA_DEPTH  64


static json_t *mst_json_tree_copy_r(json_t *v, int depth);
static json_t *mst_json_delta_r(json_t *a, json_t *b, int depth, int *rc);
static json_t *mst_json_delta_object(json_t *a, json_t *b, int depth,
    int *rc);
static json_t *mst_json_delta_array(json_t *a, json_t *b, int depth,
    int *rc);
static json_t *mst_json_delta_set(json_t *b, int *rc);
static int mst_json_delta_apply_r(json_t **v, json_t *d, int depth);


json_t *
mst_json_tree_copy(json_t *v)
{
    return mst_json_tree_copy_r(v, 0);
}


static json_t *
mst_json_tree_copy_r(json_t *v, int depth)
{
    size_t       i;
    json_t      *c, *e, *ce;
    const char  *key;

    if (v == NULL) {
        return NULL;
    }

    if (depth >= MST_JSON_DELTA_DEPTH) {
        return json_deep_copy(v);
    }

    if (json_is_object(v)) {
        c = json_object();
        if (c == NULL) {
            return NULL;
        }

        json_object_foreach(v, key, e) {
            ce = mst_json_tree_copy_r(e, depth + 1);
            if (ce == NULL || json_object_set_new(c, key, ce) != 0) {
                json_decref(c);
                return NULL;
            }
        }

        return c;
    }

    if (json_is_array(v)) {
        c = json_array();
        if (c == NULL) {
            return NULL;
        }

        json_array_foreach(v, i, e) {
            ce = mst_json_tree_copy_r(e, depth + 1);
            if (ce == NULL || json_array_append_new(c, ce) != 0) {
                json_decref(c);
                return NULL;
            }
        }

        return c;
    }

    return json_incref(v);
}


json_t *
mst_json_delta(json_t *a, json_t *b, int *rc)
{
    *rc = MST_OK;

    if (b == NULL) {
        *rc = MST_EINVAL;
        return NULL;
    }

    return mst_json_delta_r(a, b, 0, rc);
}


static json_t *
mst_json_delta_r(json_t *a, json_t *b, int depth, int *rc)
{
    if (a == b) {
        return NULL;
    }

    if (a == NULL || depth >= MST_JSON_DELTA_DEPTH) {
        return json_equal(a, b) ? NULL : mst_json_delta_set(b, rc);
    }

    if (json_is_object(a) && json_is_object(b)) {
        return mst_json_delta_object(a, b, depth, rc);
    }

    if (json_is_array(a) && json_is_array(b)) {
        return mst_json_delta_array(a, b, depth, rc);
    }

    if (json_typeof(a) == json_typeof(b)
        && !json_is_object(a) && !json_is_array(a)
        && json_equal(a, b))
    {
        return NULL;
    }

    return mst_json_delta_set(b, rc);
}


static json_t *
mst_json_delta_set(json_t *b, int *rc)
{
    json_t  *d;

    d = json_pack("{s:O}", "=", b);
    if (d == NULL) {
        *rc = MST_ENOMEM;
    }

    return d;
}


static json_t *
mst_json_delta_object(json_t *a, json_t *b, int depth, int *rc)
{
    json_t      *o, *x, *sub, *ea, *eb;
    const char  *key;

    o = NULL;
    x = NULL;

    json_object_foreach(b, key, eb) {
        ea = json_object_get(a, key);

        sub = (ea == NULL) ? mst_json_delta_set(eb, rc)
                           : mst_json_delta_r(ea, eb, depth + 1, rc);
        if (*rc != MST_OK) {
            goto failed;
        }

        if (sub == NULL) {
            continue;
        }

        if (o == NULL && (o = json_object()) == NULL) {
            json_decref(sub);
            goto nomem;
        }

        if (json_object_set_new(o, key, sub) != 0) {
            goto nomem;
        }
    }

    json_object_foreach(a, key, ea) {
        if (json_object_get(b, key) != NULL) {
            continue;
        }

        if (x == NULL && (x = json_array()) == NULL) {
            goto nomem;
        }

        if (json_array_append_new(x, json_string(key)) != 0) {
            goto nomem;
        }
    }

    if (o == NULL && x == NULL) {
        return NULL;
    }

    sub = json_object();
    if (sub == NULL) {
        goto nomem;
    }

    /* set_new() consumes its value, also when it fails */

    if (o != NULL && json_object_set_new(sub, "o", o) != 0) {
        o = NULL;
        json_decref(sub);
        goto nomem;
    }

    o = NULL;

    if (x != NULL && json_object_set_new(sub, "x", x) != 0) {
        x = NULL;
        json_decref(sub);
        goto nomem;
    }

    return sub;

nomem:

    *rc = MST_ENOMEM;

failed:

    json_decref(o);
    json_decref(x);

    return NULL;
}


static json_t *
mst_json_delta_array(json_t *a, json_t *b, int depth, int *rc)
{
    size_t   i, na, nb;
    json_t  *list, *sub, *d;

    na = json_array_size(a);
    nb = json_array_size(b);
    list = NULL;

    for (i = 0; i < nb; i++) {
        sub = (i < na) ? mst_json_delta_r(json_array_get(a, i),
                                          json_array_get(b, i), depth + 1, rc)
                       : mst_json_delta_set(json_array_get(b, i), rc);
        if (*rc != MST_OK) {
            json_decref(list);
            return NULL;
        }

        if (sub == NULL) {
            continue;
        }

        if (list == NULL && (list = json_array()) == NULL) {
            json_decref(sub);
            *rc = MST_ENOMEM;
            return NULL;
        }

        if (json_array_append_new(list,
                                  json_pack("[I, o]", (json_int_t) i, sub))
            != 0)
        {
            json_decref(list);
            *rc = MST_ENOMEM;
            return NULL;
        }
    }

    if (list == NULL && na == nb) {
        return NULL;
    }

    d = json_object();

    if (d == NULL
        || (list != NULL && json_object_set_new(d, "a", list) != 0)
        || (na != nb
            && json_object_set_new(d, "n", json_integer((json_int_t) nb))
               != 0))
    {
        json_decref(d);
        *rc = MST_ENOMEM;
        return NULL;
    }

    return d;
}


int
mst_json_delta_apply(json_t **v, json_t *d)
{
    if (d == NULL || json_is_null(d)) {
        return MST_OK;
    }

    return mst_json_delta_apply_r(v, d, 0);
}


static int
mst_json_delta_apply_r(json_t **v, json_t *d, int depth)
{
    int          rc;
    size_t       i, n, idx;
    json_t      *val, *o, *x, *a, *pair, *sub, *child;
    const char  *key;

    if (!json_is_object(d) || depth > MST_JSON_DELTA_DEPTH) {
        return MST_EINVAL;
    }

    val = json_object_get(d, "=");

    if (val != NULL) {
        json_decref(*v);
        *v = json_incref(val);
        return MST_OK;
    }

    o = json_object_get(d, "o");
    x = json_object_get(d, "x");

    if (o != NULL || x != NULL) {
        if (!json_is_object(*v)) {
            return MST_EINVAL;
        }

        json_object_foreach(o, key, sub) {
            child = json_incref(json_object_get(*v, key));

            rc = mst_json_delta_apply_r(&child, sub, depth + 1);
            if (rc != MST_OK) {
                json_decref(child);
                return rc;
            }

            if (json_object_set_new(*v, key, child) != 0) {
                return MST_ENOMEM;
            }
        }

        json_array_foreach(x, i, sub) {
            key = json_string_value(sub);
            if (key != NULL) {
                json_object_del(*v, key);
            }
        }

        return MST_OK;
    }

    a = json_object_get(d, "a");
    val = json_object_get(d, "n");

    if (!json_is_array(*v) || (a == NULL && val == NULL)) {
        return MST_EINVAL;
    }

    if (val != NULL) {
        n = (size_t) json_integer_value(val);

        while (json_array_size(*v) > n) {
            json_array_remove(*v, json_array_size(*v) - 1);
        }
    }

    json_array_foreach(a, i, pair) {
        idx = (size_t) json_integer_value(json_array_get(pair, 0));
        sub = json_array_get(pair, 1);

        if (!json_is_integer(json_array_get(pair, 0))
            || idx > json_array_size(*v))
        {
            return MST_EINVAL;
        }

        child = json_incref(json_array_get(*v, idx));

        rc = mst_json_delta_apply_r(&child, sub, depth + 1);
        if (rc != MST_OK) {
            json_decref(child);
            return rc;
        }

        rc = (idx == json_array_size(*v))
             ? json_array_append_new(*v, child)
             : json_array_set_new(*v, idx, child);

        if (rc != 0) {
            return MST_ENOMEM;
        }
    }

    return MST_OK;
}


static long
mst_json_delta_size(json_t *v)
{
    return v ? (long) json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY)
             : 0;
}


long
mst_json_delta_growth(json_t *a, json_t *d)
{
    long         n;
    size_t       i, len;
    json_t      *val, *sub, *old;
    const char  *key;

    if (d == NULL || !json_is_object(d)) {
        return 0;
    }

    val = json_object_get(d, "=");
    if (val != NULL) {
        return mst_json_delta_size(val) - mst_json_delta_size(a);
    }

    n = 0;

    json_object_foreach(json_object_get(d, "o"), key, sub) {
        old = json_object_get(a, key);

        if (old == NULL) {
            n += (long) strlen(key) + 4;     /* "key": and a comma */
        }

        n += mst_json_delta_growth(old, sub);
    }

    json_array_foreach(json_object_get(d, "x"), i, sub) {
        key = json_string_value(sub);
        old = key ? json_object_get(a, key) : NULL;

        if (old != NULL) {
            n -= (long) strlen(key) + 4 + mst_json_delta_size(old);
        }
    }

    val = json_object_get(d, "n");
    len = json_array_size(a);

    if (val != NULL) {
        for (i = (size_t) json_integer_value(val); i < len; i++) {
            n -= mst_json_delta_size(json_array_get(a, i)) + 1;
        }
    }

    json_array_foreach(json_object_get(d, "a"), i, sub) {
        old = json_array_get(a, (size_t) json_integer_value(
                                        json_array_get(sub, 0)));
        n += mst_json_delta_growth(old, json_array_get(sub, 1))
             + (old == NULL ? 1 : 0);
    }

    return n;
}
