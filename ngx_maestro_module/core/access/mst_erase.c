/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_erase.h */

#include <string.h>

#include "mst_erase.h"
#include "mst_usage.h"


#define MST_ERASE_PAGE  256


typedef struct {
    const char   *field;            /* "user_id" or "key_id" */
    const char   *value;
    json_t       *ids;              /* to erase */
    mst_erase_t  *r;
    char          last[MST_ID_LEN + 1];
    size_t        seen;
} mst_erase_scan_t;


static int
mst_erase_active(const json_t *rec)
{
    const char  *status;

    status = json_string_value(json_object_get((json_t *) rec, "status"));

    return status != NULL
           && (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0);
}


static int
mst_erase_match(const char *id, json_t *rec, void *arg)
{
    mst_erase_scan_t  *s = arg;

    const char  *v;

    memcpy(s->last, id, MST_ID_LEN + 1);
    s->seen++;

    v = json_string_value(json_object_get(rec, s->field));

    if (v == NULL || strcmp(v, s->value) != 0) {
        return 0;
    }

    if (mst_erase_active(rec)) {
        if (s->r->active++ == 0) {
            memcpy(s->r->active_id, id, MST_ID_LEN + 1);
        }
        return 0;
    }

    return json_array_append_new(s->ids, json_string(id)) == 0 ? 0 : 1;
}


/* every workflow whose field is value, unless one of them is active */
static int
mst_erase_workflows(mst_txn_t *txn, const char *field, const char *value,
    mst_erase_t *r)
{
    int                rc;
    size_t             i;
    json_t            *id;
    mst_erase_scan_t   s;

    memset(&s, 0, sizeof(mst_erase_scan_t));
    s.field = field;
    s.value = value;
    s.r = r;
    s.ids = json_array();

    if (s.ids == NULL) {
        return MST_ENOMEM;
    }

    /* all of them first: nothing is erased if one is still running */
    do {
        s.seen = 0;
        rc = mst_store_wf_scan(txn, s.last, MST_ERASE_PAGE, mst_erase_match,
                               &s);
    } while (rc == MST_OK && s.seen > 0);

    if (rc == MST_OK && r->active > 0) {
        rc = MST_CONFLICT;
    }

    json_array_foreach(s.ids, i, id) {
        if (rc != MST_OK) {
            break;
        }

        rc = mst_store_wf_delete(txn, json_string_value(id));
        if (rc == MST_OK) {
            r->workflows++;
        }
    }

    json_decref(s.ids);

    return rc;
}


static int
mst_erase_one_key(mst_txn_t *txn, const char *key_id, mst_erase_t *r)
{
    int  rc;

    rc = mst_usage_erase(txn, NULL, key_id);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_key_delete(txn, key_id);
    if (rc == MST_OK) {
        r->keys++;
    }

    return rc;
}


int
mst_erase_user(mst_txn_t *txn, const char *user_id, mst_erase_t *r)
{
    int          rc;
    char         next[MST_STORE_KEY_ID_MAX + 1];
    size_t       i;
    json_t      *keys, *k;
    const char  *id;

    memset(r, 0, sizeof(mst_erase_t));

    if (user_id == NULL || user_id[0] == '\0') {
        return MST_EINVAL;
    }

    rc = mst_erase_workflows(txn, "user_id", user_id, r);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_usage_erase(txn, user_id, NULL);
    if (rc != MST_OK) {
        return rc;
    }

    /* the user's keys: a page at a time, each erased as it comes */
    next[0] = '\0';

    do {
        rc = mst_store_key_list(txn, user_id, next[0] ? next : NULL,
                                MST_ERASE_PAGE, &keys, next);
        if (rc != MST_OK) {
            return rc;
        }

        json_array_foreach(keys, i, k) {
            id = json_string_value(json_object_get(k, "id"));

            rc = (id != NULL) ? mst_erase_one_key(txn, id, r) : MST_OK;
            if (rc != MST_OK) {
                break;
            }
        }

        json_decref(keys);

    } while (rc == MST_OK && next[0] != '\0');

    return rc;
}


int
mst_erase_key(mst_txn_t *txn, const char *key_id, mst_erase_t *r)
{
    int      rc;
    json_t  *rec;

    memset(r, 0, sizeof(mst_erase_t));

    rc = mst_store_key_get(txn, key_id, &rec);
    if (rc != MST_OK) {
        return rc;
    }

    json_decref(rec);

    rc = mst_erase_workflows(txn, "key_id", key_id, r);
    if (rc != MST_OK) {
        return rc;
    }

    return mst_erase_one_key(txn, key_id, r);
}


int
mst_erase_workflow(mst_txn_t *txn, const char *id, mst_erase_t *r)
{
    int      rc;
    json_t  *rec;

    memset(r, 0, sizeof(mst_erase_t));

    rc = mst_store_wf_get(txn, id, &rec);
    if (rc != MST_OK) {
        return rc;
    }

    if (mst_erase_active(rec)) {
        json_decref(rec);
        r->active = 1;
        memcpy(r->active_id, id, MST_ID_LEN + 1);
        return MST_CONFLICT;
    }

    json_decref(rec);

    rc = mst_store_wf_delete(txn, id);
    if (rc == MST_OK) {
        r->workflows = 1;
    }

    return rc;
}
