/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The suspect lane of a process. When a worker dies, the steps it was
 * running become suspects (mst_engine_recover()): one of them may have
 * crashed it, or none (kill -9, the OOM killer). Counting the death
 * against all of them fails healthy workflows next to a crashing one, so
 * suspects run one at a time per process: a suspect begins only when it
 * takes the lane, and its begin commits "isolated": true in the checkpoint,
 * so whoever recovers it after the next death of this process knows it
 * was the only suspect here, and counts the death as its own. Steps that
 * are not suspects run as before, beside it.
 *
 * Per process, not per machine: a crash kills one process, and the steps
 * of other processes are not in its checkpoints' "running" set. The
 * process that runs a suspect is the owner of its workflow; when the
 * ownership moves (a lost lease), the step may go on running here until
 * its plugin returns, and keeps this process's lane until then, while the
 * new owner recovers it as a suspect of its own lane.
 *
 * Threads: steps begin in write transactions, which LMDB serialises, and
 * end on any pool thread or in the event loop (an abandoned step). The
 * lane is one word holding the token of the holder (unique per process),
 * changed with compare-and-swap only:
 *
 *   take     in a write transaction that begins a suspect: 0 -> token;
 *            given back (token -> 0) if that transaction aborts or its
 *            commit fails (mst_run_tx_abort(), mst_run_tx_commit()), so
 *            no lane is held by a step that was never begun;
 *   release  token -> 0: when the step's run ends (mst_run_step_exec():
 *            complete, failure, cancel, fenced by a lost lease), in its
 *            commit transaction before the next steps begin, so a
 *            suspect of the same workflow takes over at once; when the
 *            host abandons the step (timeout) or does not run it.
 *
 * A suspect that finds the lane busy stays pending; its workflow is asked
 * to come back (retry_in_ms, lane_wait): the host wakes one waiting
 * workflow when it sees the lane free (a step of its ended), and at the
 * latest after MST_RUN_LANE_WAIT_MS; a mst_run_begin_ready() that begins
 * nothing writes nothing (its transaction is aborted), so waiting does not
 * grow the store.
 */

#include "mst_run.h"
#include "mst_run_int.h"


uint64_t
mst_run_lane_take(mst_run_tx_t *tx)
{
    uint64_t         token;
    mst_run_lane_t  *lane;

    if (tx->lane != 0) {
        /* one per transaction: the lane has one place */
        return 0;
    }

    lane = &tx->env->lane;

    if (lane->holder != 0) {
        return 0;
    }

    token = __sync_add_and_fetch(&lane->seq, 1);

    if (!__sync_bool_compare_and_swap(&lane->holder, 0, token)) {
        return 0;
    }

    tx->lane = token;

    return token;
}


void
mst_run_lane_release(mst_run_env_t *env, uint64_t token)
{
    if (token != 0) {
        (void) __sync_bool_compare_and_swap(&env->lane.holder, token, 0);
    }
}
