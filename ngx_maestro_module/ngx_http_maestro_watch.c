/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Who must wake when a workflow gets new events, on every worker, without
 * looking at every subscriber.
 *
 * Shared memory holds a ring of notifications: after each commit that
 * appended events, the committing thread (of any worker) claims the next
 * slot with an atomic increment and writes the workflow id into it, then
 * publishes the slot by storing its sequence number last. Each worker
 * reads the ring from where it stopped (the poll timer, and right after
 * its own commits), and wakes only the watchers of the ids it finds, via
 * a per-worker index (an rbtree keyed by the id's hash). A worker that
 * fell more than a ring behind, or met a slot being overwritten, wakes
 * every watcher once instead: a spurious pump costs a read transaction,
 * never a lost event, because subscribers always read the event log from
 * their own last id.
 *
 * Watchers are SSE streams and WebSocket subscriptions (one per workflow
 * they follow).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_watch.h"


static ngx_http_maestro_watch_node_t *ngx_http_maestro_watch_find(
    ngx_http_maestro_main_conf_t *mmcf, const char *id, uint32_t hash);
static void ngx_http_maestro_watch_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_maestro_watch_wake_node(
    ngx_http_maestro_main_conf_t *mmcf, ngx_http_maestro_watch_node_t *wn);


void
ngx_http_maestro_watch_init(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_rbtree_init(&mmcf->watch_tree, &mmcf->watch_sentinel,
                    ngx_http_maestro_watch_insert_value);

    /* start at the ring's head: older notifications are not ours */
    mmcf->ring_tail = mmcf->sh->ring_head;
}


/* runs on any thread of any worker */
void
ngx_http_maestro_watch_notify(ngx_http_maestro_shctx_t *sh, const char *id)
{
    ngx_atomic_uint_t            pos;
    ngx_http_maestro_ring_slot_t  *slot;

    pos = ngx_atomic_fetch_add(&sh->ring_head, 1);
    slot = &sh->ring[pos % NGX_HTTP_MAESTRO_RING_SIZE];

    /* unpublished while it is written */
    slot->seq = 0;
    ngx_memory_barrier();

    ngx_memcpy(slot->id, id, MST_ID_LEN);

    ngx_memory_barrier();
    slot->seq = pos + 1;

    (void) ngx_atomic_fetch_add(&sh->generation, 1);
}


/*
 * Runs in the event loop: wake the watchers of every workflow notified
 * since the last call. Returns 1 when it had to wake everyone.
 */
ngx_uint_t
ngx_http_maestro_watch_drain(ngx_http_maestro_main_conf_t *mmcf)
{
    char                            id[MST_ID_LEN + 1];
    uint32_t                        hash;
    ngx_atomic_uint_t               head, pos, seq;
    ngx_http_maestro_ring_slot_t   *slot;
    ngx_http_maestro_watch_node_t  *wn;

    head = mmcf->sh->ring_head;

    if (head - mmcf->ring_tail > NGX_HTTP_MAESTRO_RING_SIZE) {
        goto overflow;
    }

    id[MST_ID_LEN] = '\0';

    for (pos = mmcf->ring_tail; pos != head; pos++) {
        slot = &mmcf->sh->ring[pos % NGX_HTTP_MAESTRO_RING_SIZE];

        seq = slot->seq;
        ngx_memory_barrier();

        if (seq != pos + 1) {
            if (seq == 0 || seq < pos + 1) {
                /* still being written: the next drain reads it */
                break;
            }

            /* overwritten by a writer a whole ring ahead */
            goto overflow;
        }

        ngx_memcpy(id, slot->id, MST_ID_LEN);

        ngx_memory_barrier();

        if (slot->seq != pos + 1) {
            goto overflow;
        }

        mmcf->ring_tail = pos + 1;

        hash = ngx_crc32_short((u_char *) id, MST_ID_LEN);
        wn = ngx_http_maestro_watch_find(mmcf, id, hash);

        if (wn != NULL) {
            ngx_http_maestro_watch_wake_node(mmcf, wn);
        }
    }

    return 0;

overflow:

    mmcf->ring_tail = head;
    ngx_http_maestro_watch_wake_all(mmcf);

    return 1;
}


void
ngx_http_maestro_watch_add(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_watch_t *w, const char *id)
{
    uint32_t                        hash;
    ngx_http_maestro_watch_node_t  *wn;

    hash = ngx_crc32_short((u_char *) id, MST_ID_LEN);
    wn = ngx_http_maestro_watch_find(mmcf, id, hash);

    if (wn == NULL) {
        wn = ngx_calloc(sizeof(ngx_http_maestro_watch_node_t),
                        ngx_cycle->log);
        if (wn == NULL) {
            /* not indexed: the poll's wake-all still reaches it */
            w->node = NULL;
            return;
        }

        ngx_memcpy(wn->id, id, MST_ID_LEN);
        wn->node.key = hash;
        ngx_queue_init(&wn->watchers);
        ngx_rbtree_insert(&mmcf->watch_tree, &wn->node);
    }

    w->node = wn;
    ngx_queue_insert_tail(&wn->watchers, &w->queue);
}


void
ngx_http_maestro_watch_del(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_watch_t *w)
{
    ngx_http_maestro_watch_node_t  *wn;

    wn = w->node;
    if (wn == NULL) {
        return;
    }

    ngx_queue_remove(&w->queue);
    w->node = NULL;

    if (ngx_queue_empty(&wn->watchers) && !wn->waking) {
        ngx_rbtree_delete(&mmcf->watch_tree, &wn->node);
        ngx_free(wn);
    }
}


static void
ngx_http_maestro_watch_wake_node(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_watch_node_t *wn)
{
    ngx_queue_t               *q, *next;
    ngx_http_maestro_watch_t  *w;

    /* a watcher may go (or others come) while we wake them */
    wn->waking = 1;

    for (q = ngx_queue_head(&wn->watchers);
         q != ngx_queue_sentinel(&wn->watchers);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_maestro_watch_t, queue);
        w->wake(w);
    }

    wn->waking = 0;

    if (ngx_queue_empty(&wn->watchers)) {
        ngx_rbtree_delete(&mmcf->watch_tree, &wn->node);
        ngx_free(wn);
    }
}


void
ngx_http_maestro_watch_wake_all(ngx_http_maestro_main_conf_t *mmcf)
{
    char                           (*ids)[MST_ID_LEN];
    uint32_t                        *hashes;
    ngx_uint_t                       n, i;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_maestro_watch_node_t   *wn;

    sentinel = mmcf->watch_tree.sentinel;

    if (mmcf->watch_tree.root == sentinel) {
        return;
    }

    n = 0;
    for (node = ngx_rbtree_min(mmcf->watch_tree.root, sentinel);
         node != NULL;
         node = ngx_rbtree_next(&mmcf->watch_tree, node))
    {
        n++;
    }

    /*
     * By id, not by node: waking one connection may close it and free
     * the nodes of the other workflows it followed.
     */

    ids = ngx_alloc(n * MST_ID_LEN, ngx_cycle->log);
    hashes = ngx_alloc(n * sizeof(uint32_t), ngx_cycle->log);

    if (ids == NULL || hashes == NULL) {
        ngx_free(ids);
        ngx_free(hashes);
        return;
    }

    i = 0;
    for (node = ngx_rbtree_min(mmcf->watch_tree.root, sentinel);
         node != NULL && i < n;
         node = ngx_rbtree_next(&mmcf->watch_tree, node))
    {
        wn = (ngx_http_maestro_watch_node_t *) node;
        ngx_memcpy(ids[i], wn->id, MST_ID_LEN);
        hashes[i] = (uint32_t) node->key;
        i++;
    }

    for (i = 0; i < n; i++) {
        wn = ngx_http_maestro_watch_find(mmcf, ids[i], hashes[i]);
        if (wn != NULL) {
            ngx_http_maestro_watch_wake_node(mmcf, wn);
        }
    }

    ngx_free(ids);
    ngx_free(hashes);
}


static ngx_http_maestro_watch_node_t *
ngx_http_maestro_watch_find(ngx_http_maestro_main_conf_t *mmcf,
    const char *id, uint32_t hash)
{
    ngx_int_t                       rc;
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_http_maestro_watch_node_t  *wn;

    node = mmcf->watch_tree.root;
    sentinel = mmcf->watch_tree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        wn = (ngx_http_maestro_watch_node_t *) node;
        rc = ngx_memcmp(id, wn->id, MST_ID_LEN);

        if (rc == 0) {
            return wn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_maestro_watch_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t              **p;
    ngx_http_maestro_watch_node_t   *wn, *wnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            wn = (ngx_http_maestro_watch_node_t *) node;
            wnt = (ngx_http_maestro_watch_node_t *) temp;

            p = (ngx_memcmp(wn->id, wnt->id, MST_ID_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
