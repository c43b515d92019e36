/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The fair share of a worker's step slots between workflows. A worker
 * runs at most "slots" steps at once on its steps pool (the pool's
 * threads, plus one waiting so a thread that frees up never idles); the
 * steps that do not fit wait in their workflow's run queue, and a freed
 * slot goes to the next workflow in turn (deficit round robin: a flow of
 * weight w starts up to w steps per turn). A short workflow's step thus
 * waits for about one step of each other workflow, whatever their
 * widths, instead of behind all of a big fan-out's.
 *
 * A workflow has at most "cap" steps begun (running in its checkpoint)
 * at once, mst_sched_room(): the others stay pending in the checkpoint,
 * so a crash resumes them and recovery suspects only steps that ran.
 *
 * Plain memory, no locks: everything runs on the owner's event loop,
 * except mst_sched_contended(), which any thread may call.
 */

#ifndef _MST_SCHED_H_INCLUDED_
#define _MST_SCHED_H_INCLUDED_

#include <stddef.h>


typedef struct mst_sched_item_s  mst_sched_item_t;
typedef struct mst_sched_flow_s  mst_sched_flow_t;

/* a step waiting for a slot; embedded by the caller */
struct mst_sched_item_s {
    mst_sched_item_t   *next;
};

/* one workflow's run queue; embedded by the caller */
struct mst_sched_flow_s {
    mst_sched_flow_t   *next;       /* in the ring of flows waiting */
    mst_sched_item_t   *head;
    mst_sched_item_t  **tail;
    size_t              queued;
    size_t              running;    /* started, not done */
    unsigned            weight;     /* steps per turn, >= 1 */
    unsigned            credit;     /* left in this turn */
    unsigned            waiting:1;  /* in the ring */
};

typedef struct {
    mst_sched_flow_t   *head;       /* whose turn it is */
    mst_sched_flow_t   *last;
    size_t              slots;      /* steps at once, >= 1 */
    size_t              running;
    size_t              queued;     /* atomic for other threads */
} mst_sched_t;


void mst_sched_init(mst_sched_t *s, size_t slots);
void mst_sched_set_slots(mst_sched_t *s, size_t slots);

void mst_sched_flow_init(mst_sched_flow_t *f, unsigned weight);

/* queue a step of flow f (FIFO within the flow) */
void mst_sched_push(mst_sched_t *s, mst_sched_flow_t *f,
    mst_sched_item_t *item);

/*
 * The step to start now, or NULL when every slot is taken or nothing
 * waits. *f: its flow. The step counts
 * as running until mst_sched_done().
 */
mst_sched_item_t *mst_sched_next(mst_sched_t *s, mst_sched_flow_t **f);
void mst_sched_done(mst_sched_t *s, mst_sched_flow_t *f);

/*
 * Take flow f out (its workflow ended or was lost): returns its queued
 * steps as a list (item->next), which the caller frees.
 */
mst_sched_item_t *mst_sched_flow_drop(mst_sched_t *s, mst_sched_flow_t *f);

/*
 * Whether a step that just finished should hand its thread back rather
 * than run its workflow's next step itself: others wait. Any thread.
 */
int mst_sched_contended(const mst_sched_t *s);

/*
 * How many more steps a workflow with "running" steps begun may begin,
 * under a cap (0: none).
 */
size_t mst_sched_room(size_t cap, size_t running);

#endif /* _MST_SCHED_H_INCLUDED_ */
