/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN: see mst_sched.h. The ring holds the flows with steps waiting,
 * in turn order; a flow leaves it when its queue empties and joins at
 * the end with a fresh turn when a step is queued again, so a flow that
 * comes and goes (a sequence: one step at a time) never waits for more
 * than one turn of each other flow.
 */

#include <stdint.h>
#include <string.h>

#include "mst_sched.h"


void
mst_sched_init(mst_sched_t *s, size_t slots)
{
    memset(s, 0, sizeof(mst_sched_t));
    s->slots = slots ? slots : 1;
}


void
mst_sched_set_slots(mst_sched_t *s, size_t slots)
{
    s->slots = slots ? slots : 1;
}


void
mst_sched_flow_init(mst_sched_flow_t *f, unsigned weight)
{
    memset(f, 0, sizeof(mst_sched_flow_t));
    f->tail = &f->head;
    f->weight = weight ? weight : 1;
}


static void
mst_sched_ring_add(mst_sched_t *s, mst_sched_flow_t *f)
{
    f->next = NULL;
    f->credit = f->weight;
    f->waiting = 1;

    if (s->last != NULL) {
        s->last->next = f;
    } else {
        s->head = f;
    }

    s->last = f;
}


/* f is the head */
static void
mst_sched_ring_pop(mst_sched_t *s)
{
    mst_sched_flow_t  *f;

    f = s->head;
    s->head = f->next;

    if (s->head == NULL) {
        s->last = NULL;
    }

    f->next = NULL;
    f->waiting = 0;
}


void
mst_sched_push(mst_sched_t *s, mst_sched_flow_t *f, mst_sched_item_t *item)
{
    item->next = NULL;
    *f->tail = item;
    f->tail = &item->next;
    f->queued++;

    __atomic_store_n(&s->queued, s->queued + 1, __ATOMIC_RELAXED);

    if (!f->waiting) {
        mst_sched_ring_add(s, f);
    }
}


mst_sched_item_t *
mst_sched_next(mst_sched_t *s, mst_sched_flow_t **fp)
{
    mst_sched_flow_t  *f;
    mst_sched_item_t  *item;

    if (s->running >= s->slots || s->head == NULL) {
        return NULL;
    }

    f = s->head;

    item = f->head;
    f->head = item->next;
    if (f->head == NULL) {
        f->tail = &f->head;
    }
    item->next = NULL;

    f->queued--;
    f->running++;
    f->credit--;
    s->running++;

    __atomic_store_n(&s->queued, s->queued - 1, __ATOMIC_RELAXED);

    if (f->queued == 0) {
        mst_sched_ring_pop(s);

    } else if (f->credit == 0) {
        /* its turn is over: to the end of the ring, with a new one */
        mst_sched_ring_pop(s);
        mst_sched_ring_add(s, f);
    }

    *fp = f;

    return item;
}


void
mst_sched_done(mst_sched_t *s, mst_sched_flow_t *f)
{
    if (f->running > 0) {
        f->running--;
    }

    if (s->running > 0) {
        s->running--;
    }
}


mst_sched_item_t *
mst_sched_flow_drop(mst_sched_t *s, mst_sched_flow_t *f)
{
    mst_sched_flow_t  **pp, *prev;
    mst_sched_item_t   *list;

    if (f->waiting) {
        prev = NULL;

        for (pp = &s->head; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == f) {
                *pp = f->next;
                if (s->last == f) {
                    s->last = prev;
                }
                break;
            }
            prev = *pp;
        }

        f->next = NULL;
        f->waiting = 0;
    }

    list = f->head;

    __atomic_store_n(&s->queued, s->queued - f->queued, __ATOMIC_RELAXED);

    f->head = NULL;
    f->tail = &f->head;
    f->queued = 0;

    return list;
}


int
mst_sched_contended(const mst_sched_t *s)
{
    return __atomic_load_n(&s->queued, __ATOMIC_RELAXED) > 0;
}


size_t
mst_sched_room(size_t cap, size_t running)
{
    if (cap == 0) {
        return SIZE_MAX;
    }

    return running < cap ? cap - running : 0;
}
