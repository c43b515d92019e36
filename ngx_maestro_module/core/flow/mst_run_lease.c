/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The ownership side of mst_run (see mst_run.h): leases renewed by their
 * owner, released on a graceful exit, orphans found for another process to
 * claim. Each function is one transaction, on a pool thread; none needs
 * the engine.
 */

#include <stdlib.h>
#include <string.h>

#include "mst_run.h"
#include "mst_run_int.h"


typedef struct {
    mst_run_env_t       *env;
    mst_run_alive_pt     alive;
    const char *const   *mine;
    size_t               nmine;
    size_t               max;
    int64_t              now;
    json_t              *ids;
} mst_run_orphan_ctx_t;


int
mst_run_renew(mst_run_env_t *env, const char *const *ids,
    const uint64_t *epochs, size_t n, void (*lost)(const char *id, void *arg),
    void *arg)
{
    int         rc;
    size_t      i;
    int64_t     until;
    json_t     *rec;
    mst_txn_t  *txn;

    if (n == 0) {
        return MST_OK;
    }

    rc = mst_txn_begin(env->store, 0, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    until = mst_now_ms() + env->lease_ms;

    for (i = 0; i < n; i++) {
        if (mst_store_wf_get(txn, ids[i], &rec) != MST_OK) {
            lost(ids[i], arg);
            continue;
        }

        if (mst_run_int(rec, "owner") != env->pid
            || (uint64_t) mst_run_int(rec, "epoch") != epochs[i])
        {
            json_decref(rec);
            lost(ids[i], arg);
            continue;
        }

        json_object_set_new(rec, "lease_until", json_integer(until));
        rc = mst_store_wf_put(txn, ids[i], rec);
        json_decref(rec);

        if (rc != MST_OK) {
            mst_txn_abort(txn);
            return rc;
        }
    }

    return mst_txn_commit(txn);
}


int
mst_run_release(mst_run_env_t *env, const char *id, uint64_t epoch)
{
    int         rc;
    json_t     *rec;
    mst_txn_t  *txn;

    rc = mst_txn_begin(env->store, 0, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    rc = mst_store_wf_get(txn, id, &rec);
    if (rc != MST_OK) {
        mst_txn_abort(txn);
        return rc;
    }

    if (mst_run_int(rec, "owner") != env->pid
        || (uint64_t) mst_run_int(rec, "epoch") != epoch)
    {
        json_decref(rec);
        mst_txn_abort(txn);
        return MST_CONFLICT;
    }

    json_object_set_new(rec, "owner", json_integer(0));
    json_object_set_new(rec, "lease_until", json_integer(0));

    rc = mst_store_wf_put(txn, id, rec);
    json_decref(rec);

    if (rc != MST_OK) {
        mst_txn_abort(txn);
        return rc;
    }

    return mst_txn_commit(txn);
}


static int
mst_run_orphan_cb(const char *id, json_t *rec, void *arg)
{
    mst_run_orphan_ctx_t  *oc = arg;
    long                   owner;
    size_t                 i;

    owner = (long) mst_run_int(rec, "owner");

    for (i = 0; i < oc->nmine; i++) {
        if (strcmp(oc->mine[i], id) == 0) {
            return 0;
        }
    }

    /*
     * A live owner's lease is respected, ours too: this process may be
     * adopting the workflow right now (a claim on another io thread whose
     * result the event loop has not seen yet). One we dropped after an
     * error comes back when its lease expires.
     */

    if (owner != 0
        && mst_run_int(rec, "lease_until") > oc->now
        && (owner == oc->env->pid || oc->alive(owner)))
    {
        return 0;
    }

    json_array_append_new(oc->ids, json_string(id));

    return json_array_size(oc->ids) >= oc->max;
}


int
mst_run_orphans(mst_run_env_t *env, mst_run_alive_pt alive,
    const char *const *mine, size_t nmine, size_t max, json_t **ids)
{
    int                    rc;
    mst_txn_t             *txn;
    mst_run_orphan_ctx_t   oc;

    *ids = json_array();
    if (max == 0) {
        return MST_OK;
    }

    rc = mst_txn_begin(env->store, 1, &txn);
    if (rc != MST_OK) {
        return rc;
    }

    oc.env = env;
    oc.alive = alive;
    oc.mine = mine;
    oc.nmine = nmine;
    oc.max = max;
    oc.now = mst_now_ms();
    oc.ids = *ids;

    rc = mst_store_wf_scan_active(txn, mst_run_orphan_cb, &oc);
    mst_txn_abort(txn);

    return rc;
}


/* the census (mst_run.h) */

static mst_census_slot_t *
mst_census_slot(mst_census_t *c, long pid, mst_run_alive_pt alive)
{
    long                i, old;
    mst_census_slot_t  *s;

    for (i = 0; i < MST_CENSUS_SLOTS; i++) {
        if (__atomic_load_n(&c->slots[i].pid, __ATOMIC_ACQUIRE) == pid) {
            return &c->slots[i];
        }
    }

    if (alive == NULL) {
        return NULL;
    }

    for (i = 0; i < MST_CENSUS_SLOTS; i++) {
        s = &c->slots[i];
        old = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);

        /* free, or a dead process's that counts nothing */
        if ((old == 0
             || (__atomic_load_n(&s->active, __ATOMIC_ACQUIRE) == 0
                 && !alive(old)))
            && __atomic_compare_exchange_n(&s->pid, &old, pid, 0,
                                           __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE))
        {
            return s;
        }
    }

    return NULL;
}


void
mst_census_add(mst_census_t *c, long pid, long delta,
    mst_run_alive_pt alive)
{
    long                n;
    mst_census_slot_t  *s;

    s = mst_census_slot(c, pid, delta > 0 ? alive : NULL);
    if (s == NULL) {
        return;         /* more processes than slots: not counted */
    }

    n = __atomic_add_fetch(&s->active, delta, __ATOMIC_ACQ_REL);

    if (n < 0) {
        /* let go of one adopted before a full table: not below 0 */
        __atomic_fetch_add(&s->active, -n, __ATOMIC_ACQ_REL);
    }
}


void
mst_census_claimed(mst_census_t *c, long prev, mst_run_alive_pt alive)
{
    long                n;
    mst_census_slot_t  *s;

    if (prev <= 0 || alive(prev)) {
        /* a live owner lets go itself (its lease was lost) */
        return;
    }

    s = mst_census_slot(c, prev, NULL);
    if (s == NULL) {
        return;
    }

    n = __atomic_load_n(&s->active, __ATOMIC_ACQUIRE);

    while (n > 0
           && !__atomic_compare_exchange_n(&s->active, &n, n - 1, 0,
                                           __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE))
    {
        /* n reloaded */
    }
}


void
mst_census_count(mst_census_t *c, mst_run_alive_pt alive, long *active,
    long *orphaned)
{
    long    i, pid, n;

    *active = 0;
    *orphaned = 0;

    for (i = 0; i < MST_CENSUS_SLOTS; i++) {
        pid = __atomic_load_n(&c->slots[i].pid, __ATOMIC_ACQUIRE);
        n = __atomic_load_n(&c->slots[i].active, __ATOMIC_ACQUIRE);

        if (pid == 0 || n <= 0) {
            continue;
        }

        if (alive(pid)) {
            *active += n;

        } else {
            *orphaned += n;
        }
    }
}
