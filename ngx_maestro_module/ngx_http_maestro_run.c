/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The per-worker scheduler: the event loop side of mst_run. It never does
 * blocking work itself; it posts:
 *
 *  - step tasks to the steps pool ("maestro_thread_pool"): the plugin runs
 *    and its result is committed on that thread (mst_run_step_exec); the
 *    completion handler here posts the next ready steps;
 *  - io tasks to the io pool ("maestro_io_thread_pool"): store writes of
 *    the API (create, cancel), timeouts and retries, lease renewal and the
 *    claiming of orphaned workflows.
 *
 * Timers: a step timeout (non-cancelable, so a worker that is shutting
 * down gracefully finishes its steps first), a retry backoff per workflow,
 * the housekeeping timer (leases, orphans), cancelable, and the poll timer
 * that wakes SSE subscribers when another worker (or a pool thread) wrote
 * events, not cancelable, so an exiting worker ends its streams first.
 *
 * A workflow (ngx_http_maestro_wf_t) lives while tasks or timers refer to
 * it ("refs"); it is freed once finished or lost with no reference left.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_sse.h"
#include "ngx_http_maestro_ws.h"
#include "ngx_http_maestro_watch.h"
#include "ngx_http_maestro_run.h"
#include "ngx_http_maestro_thread.h"


#define NGX_HTTP_MAESTRO_TIMEOUT_GRACE  2000

/* a pool thread runs the next step of its workflow itself, this long */
#define NGX_HTTP_MAESTRO_CHAIN_STEPS    16
#define NGX_HTTP_MAESTRO_CHAIN_MS       20

/* a workflow whose final "store_full" write found no room tries again */
#define NGX_HTTP_MAESTRO_FULL_RETRY     1000


typedef struct {
    ngx_queue_t                     queue;
    char                            id[MST_ID_LEN + 1];
    uint64_t                        epoch;
    ngx_uint_t                      refs;
    ngx_event_t                     retry_ev;
    ngx_http_maestro_main_conf_t   *mmcf;
    unsigned                        finished:1;
    unsigned                        lost:1;
    unsigned                        lane_wait:1;    /* for the lane */
    unsigned                        full:1;     /* to end as store_full */
} ngx_http_maestro_wf_t;


typedef struct {
    ngx_http_maestro_wf_t          *wf;
    uint64_t                        epoch;
    mst_run_step_t                  step;       /* the one running */
    volatile int                    state;
    int64_t                         deadline;   /* atomic: of that step */
    mst_run_next_t                  next;
    int                             rc;
    char                            err[MST_ERRLEN];
    ngx_event_t                     timeout_ev;
} ngx_http_maestro_step_t;


/* an io task that ends in a "next" for a workflow */
typedef struct {
    ngx_http_maestro_wf_t          *wf;
    uint64_t                        epoch;
    char                            node[65];
    int                             index;
    char                            error[160];
    mst_run_next_t                  next;
    int                             rc;
    char                            err[MST_ERRLEN];
} ngx_http_maestro_wf_io_t;


typedef struct {
    char                            id[MST_ID_LEN + 1];
    int                             rc;
    mst_run_next_t                  next;
} ngx_http_maestro_claim_t;


typedef struct {
    ngx_http_maestro_main_conf_t   *mmcf;
    char                          **ids;
    uint64_t                       *epochs;
    size_t                          n;
    size_t                          capacity;
    json_t                         *lost;
    ngx_http_maestro_claim_t       *claims;
    size_t                          nclaims;
    size_t                          pruned;
    mst_store_space_t               space;
    int                             level;      /* MST_STORE_* */
    unsigned                        prune:1;
} ngx_http_maestro_hk_t;


static void ngx_http_maestro_handle_next(ngx_http_maestro_wf_t *wf,
    int rc, mst_run_next_t *next, const char *err);
static void ngx_http_maestro_wf_release(ngx_http_maestro_wf_t *wf);
static ngx_int_t ngx_http_maestro_post_step(ngx_http_maestro_wf_t *wf,
    mst_run_step_t *step);
static void ngx_http_maestro_step_thread(void *data, ngx_log_t *log);
static void ngx_http_maestro_step_done(ngx_event_t *ev);
static void ngx_http_maestro_step_timeout(ngx_event_t *ev);
static void ngx_http_maestro_retry_handler(ngx_event_t *ev);
static void ngx_http_maestro_housekeeping(ngx_event_t *ev);
static void ngx_http_maestro_poll(ngx_event_t *ev);
static void ngx_http_maestro_run_level_log(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_hk_t *hk);
static void ngx_http_maestro_run_wake(ngx_http_maestro_main_conf_t *mmcf);
static void ngx_http_maestro_lane_kick(ngx_http_maestro_main_conf_t *mmcf);
static void ngx_http_maestro_lane_waits(ngx_http_maestro_wf_t *wf,
    ngx_uint_t wait);


static ngx_cycle_t  *ngx_http_maestro_cycle;

/* workflows of this worker whose suspect waits for the suspect lane */
static ngx_uint_t    ngx_http_maestro_lane_waiting;


/* runs on any thread */
int
ngx_http_maestro_run_alive(long pid)
{
    if (pid <= 0) {
        return 0;
    }

    return kill((pid_t) pid, 0) == 0 || ngx_errno == NGX_EPERM;
}


void
ngx_http_maestro_run_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_http_maestro_cycle = cycle;

    /*
     * Not cancelable: a worker that is shutting down gracefully waits for
     * its next tick, which ends the SSE streams cleanly (the clients
     * resume on a new worker) instead of exiting with them open.
     */
    mmcf->poll_ev.handler = ngx_http_maestro_poll;
    mmcf->poll_ev.data = mmcf;
    mmcf->poll_ev.log = cycle->log;
    ngx_add_timer(&mmcf->poll_ev, mmcf->poll_interval);

    /* soon after start: resume what a dead worker left behind */
    mmcf->housekeeping_ev.handler = ngx_http_maestro_housekeeping;
    mmcf->housekeeping_ev.data = mmcf;
    mmcf->housekeeping_ev.log = cycle->log;
    mmcf->housekeeping_ev.cancelable = 1;
    ngx_add_timer(&mmcf->housekeeping_ev, 100);
}


ngx_int_t
ngx_http_maestro_run_can_accept(ngx_http_maestro_main_conf_t *mmcf)
{
    return mmcf->nactive < mmcf->queue_size && !ngx_exiting
           && !ngx_terminate;
}


/* workflows of this worker */

void
ngx_http_maestro_run_adopt(ngx_http_maestro_main_conf_t *mmcf,
    const char *id, mst_run_next_t *next)
{
    size_t                  i;
    ngx_http_maestro_wf_t  *wf;

    wf = ngx_calloc(sizeof(ngx_http_maestro_wf_t),
                    ngx_http_maestro_cycle->log);
    if (wf == NULL) {
        /* the housekeeping claims it again later; its suspect, if any,
           does not hold the lane meanwhile */
        for (i = 0; i < next->nsteps; i++) {
            mst_run_lane_release(&mmcf->env, next->steps[i].lane);
        }

        mst_run_next_free(next);
        return;
    }

    ngx_memcpy(wf->id, id, MST_ID_LEN);
    wf->epoch = next->epoch;
    wf->mmcf = mmcf;

    wf->retry_ev.handler = ngx_http_maestro_retry_handler;
    wf->retry_ev.data = wf;
    wf->retry_ev.log = ngx_http_maestro_cycle->log;

    ngx_queue_insert_tail(&mmcf->active, &wf->queue);
    mmcf->nactive++;
    (void) ngx_atomic_fetch_add(&mmcf->sh->active, 1);

    ngx_http_maestro_handle_next(wf, MST_OK, next, NULL);
}


static void
ngx_http_maestro_wf_release(ngx_http_maestro_wf_t *wf)
{
    ngx_http_maestro_main_conf_t  *mmcf;

    if (wf->refs > 0 || !(wf->finished || wf->lost)) {
        return;
    }

    if (wf->retry_ev.timer_set) {
        if (!wf->lost && !wf->finished) {
            return;
        }
        ngx_del_timer(&wf->retry_ev);
    }

    mmcf = wf->mmcf;

    ngx_http_maestro_lane_waits(wf, 0);
    ngx_queue_remove(&wf->queue);
    mmcf->nactive--;
    (void) ngx_atomic_fetch_add(&mmcf->sh->active, -1);

    ngx_free(wf);
}


static void
ngx_http_maestro_handle_next(ngx_http_maestro_wf_t *wf, int rc,
    mst_run_next_t *next, const char *err)
{
    size_t      i;
    ngx_log_t  *log;

    log = ngx_http_maestro_cycle->log;

    /* what this commit wrote reaches this worker's subscribers now */
    ngx_http_maestro_run_wake(wf->mmcf);

    if (rc == MST_MAPFULL && !wf->finished && !ngx_exiting && !ngx_quit) {
        /*
         * Even its final write found the map full: it stays ours (the
         * housekeeping renews its lease) and tries again, rather than
         * being dropped for a claimer to take for a dead worker's. (An
         * exiting worker drops it: the new ones claim it, with the room
         * of a reload.)
         */
        if (!wf->full) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "maestro: workflow \"%s\": %s; it ends as "
                          "store_full when there is room (raise "
                          "maestro_store_size)", wf->id,
                          err ? err : mst_strerror(rc));
        }

        wf->full = 1;
        mst_run_next_free(next);

        if (wf->retry_ev.timer_set) {
            ngx_del_timer(&wf->retry_ev);
        }
        ngx_add_timer(&wf->retry_ev, NGX_HTTP_MAESTRO_FULL_RETRY);

        return;
    }

    if (rc != MST_OK) {
        if (rc == MST_CONFLICT) {
            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "maestro: workflow \"%s\" is owned elsewhere now",
                          wf->id);
        } else {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "maestro: workflow \"%s\": %s", wf->id,
                          err ? err : mst_strerror(rc));
        }

        /* dropped here; the housekeeping claims it again if it can */
        wf->lost = 1;
        mst_run_next_free(next);
        ngx_http_maestro_wf_release(wf);
        return;
    }

    if (next->finished) {
        wf->finished = 1;
    }

    for (i = 0; i < next->nsteps; i++) {
        if (ngx_http_maestro_post_step(wf, &next->steps[i]) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "maestro: workflow \"%s\": cannot post step \"%s\""
                          " (thread pool \"%V\" queue full)", wf->id,
                          next->steps[i].node, &wf->mmcf->pool_name);
            wf->lost = 1;

            /* it will not run here: the next suspect may */
            mst_run_lane_release(&wf->mmcf->env, next->steps[i].lane);
        }
    }

    if (next->retry_in_ms > 0 && !wf->finished && !wf->lost) {
        ngx_http_maestro_lane_waits(wf, next->lane_wait);

        if (wf->retry_ev.timer_set) {
            ngx_del_timer(&wf->retry_ev);
        }
        ngx_add_timer(&wf->retry_ev, (ngx_msec_t) next->retry_in_ms);
    }

    mst_run_next_free(next);
    ngx_http_maestro_wf_release(wf);
}


/* steps */

static ngx_int_t
ngx_http_maestro_post_step(ngx_http_maestro_wf_t *wf, mst_run_step_t *step)
{
    ngx_thread_task_t        *task;
    ngx_http_maestro_step_t  *s;

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_maestro_step_t),
                      ngx_http_maestro_cycle->log);
    if (task == NULL) {
        return NGX_ERROR;
    }

    s = (ngx_http_maestro_step_t *) (task + 1);
    s->wf = wf;
    s->epoch = wf->epoch;
    s->step = *step;
    s->state = MST_STEP_RUNNING;
    s->deadline = mst_mono_ms() + step->timeout_ms
                  + NGX_HTTP_MAESTRO_TIMEOUT_GRACE;

    task->ctx = s;
    task->handler = ngx_http_maestro_step_thread;
    task->event.handler = ngx_http_maestro_step_done;
    task->event.data = task;
    task->event.log = ngx_http_maestro_cycle->log;

    if (ngx_thread_task_post(wf->mmcf->pool, task) != NGX_OK) {
        ngx_free(task);
        return NGX_ERROR;
    }

    /* the task owns the input now */
    step->input = NULL;

    s->timeout_ev.handler = ngx_http_maestro_step_timeout;
    s->timeout_ev.data = task;
    s->timeout_ev.log = ngx_http_maestro_cycle->log;
    ngx_add_timer(&s->timeout_ev,
                  (ngx_msec_t) step->timeout_ms
                  + NGX_HTTP_MAESTRO_TIMEOUT_GRACE);

    wf->refs++;

    return NGX_OK;
}


/*
 * Runs on a pool thread. When the commit began exactly one next step and
 * nothing else (a sequence), this thread runs it too, and so on, for up
 * to NGX_HTTP_MAESTRO_CHAIN_STEPS steps or NGX_HTTP_MAESTRO_CHAIN_MS: a
 * step then costs no round trip through the event loop (a task post, a
 * thread wake-up, a completion event). Each step is still its own commit
 * and checkpoint. The loop's timeout follows the step that runs: the
 * thread publishes it (s->step, s->deadline) while the state is
 * COMMITTING, which the loop never abandons, then sets RUNNING; a step
 * whose deadline would come before the loop's timer is left to the loop.
 */
static void
ngx_http_maestro_step_thread(void *data, ngx_log_t *log)
{
    ngx_http_maestro_step_t  *s = data;

    int64_t      start, timer_at, now;
    ngx_uint_t   n;

    start = mst_mono_ms();

    /* the loop's timer fires then; no chained step may end before */
    timer_at = __atomic_load_n(&s->deadline, __ATOMIC_RELAXED);

    s->rc = mst_run_step_exec(&s->wf->mmcf->env, s->wf->id, s->epoch,
                              &s->step, &s->state, &s->next, s->err,
                              sizeof(s->err));

    for (n = 1; n < NGX_HTTP_MAESTRO_CHAIN_STEPS; n++) {

        now = mst_mono_ms();

        if (s->rc != MST_OK || s->next.nsteps != 1 || s->next.finished
            || s->next.retry_in_ms > 0
            || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)
               != MST_STEP_COMMITTING
            || now - start >= NGX_HTTP_MAESTRO_CHAIN_MS
            || now + s->next.steps[0].timeout_ms
               + NGX_HTTP_MAESTRO_TIMEOUT_GRACE < timer_at
            || ngx_exiting || ngx_terminate || ngx_quit)
        {
            return;
        }

        /* the next step becomes this task's */
        free(s->step.input);
        s->step = s->next.steps[0];
        s->next.steps[0].input = NULL;
        mst_run_next_free(&s->next);
        ngx_memzero(&s->next, sizeof(mst_run_next_t));

        __atomic_store_n(&s->deadline, now + s->step.timeout_ms
                                       + NGX_HTTP_MAESTRO_TIMEOUT_GRACE,
                         __ATOMIC_RELAXED);
        __atomic_store_n(&s->state, MST_STEP_RUNNING, __ATOMIC_RELEASE);

        s->rc = mst_run_step_exec(&s->wf->mmcf->env, s->wf->id, s->epoch,
                                  &s->step, &s->state, &s->next, s->err,
                                  sizeof(s->err));
    }
}


/* runs in the event loop */
static void
ngx_http_maestro_step_done(ngx_event_t *ev)
{
    ngx_thread_task_t             *task = ev->data;
    ngx_http_maestro_wf_t         *wf;
    ngx_http_maestro_step_t       *s;
    ngx_http_maestro_main_conf_t  *mmcf;

    s = task->ctx;
    wf = s->wf;
    mmcf = wf->mmcf;

    if (s->timeout_ev.timer_set) {
        ngx_del_timer(&s->timeout_ev);
    }

    wf->refs--;

    if (s->state == MST_STEP_ABANDONED) {
        /* the timeout handler recorded the failure already */
        mst_run_next_free(&s->next);
        ngx_http_maestro_wf_release(wf);

    } else {
        ngx_http_maestro_handle_next(wf, s->rc, &s->next, s->err);
    }

    ngx_free(s->step.input);
    ngx_free(task);

    /* a step ended: a suspect may have left the lane */
    ngx_http_maestro_lane_kick(mmcf);
}


/* runs on a pool thread */
static void
ngx_http_maestro_wf_io_fail(void *arg)
{
    ngx_http_maestro_wf_io_t  *wio = arg;

    wio->rc = mst_run_step_failed(&wio->wf->mmcf->env, wio->wf->id,
                                  wio->epoch, wio->node, wio->index,
                                  wio->error, 1, &wio->next, wio->err,
                                  sizeof(wio->err));
}


/* runs on a pool thread */
static void
ngx_http_maestro_wf_io_begin(void *arg)
{
    ngx_http_maestro_wf_io_t  *wio = arg;

    wio->rc = mst_run_begin_ready(&wio->wf->mmcf->env, wio->wf->id,
                                  wio->epoch, &wio->next, wio->err,
                                  sizeof(wio->err));
}


/* runs on a pool thread */
static void
ngx_http_maestro_wf_io_full(void *arg)
{
    ngx_http_maestro_wf_io_t  *wio = arg;

    wio->rc = mst_run_full(&wio->wf->mmcf->env, wio->wf->id, wio->epoch,
                           &wio->next, wio->err, sizeof(wio->err));
}


/* runs in the event loop */
static void
ngx_http_maestro_wf_io_done(void *arg, ngx_int_t rc)
{
    ngx_http_maestro_wf_io_t  *wio = arg;

    wio->wf->refs--;

    if (rc != NGX_OK) {
        /* not posted (logged): dropped here, the housekeeping claims it
           again if it can */
        wio->wf->lost = 1;
        ngx_http_maestro_wf_release(wio->wf);
        ngx_free(wio);
        return;
    }

    ngx_http_maestro_handle_next(wio->wf, wio->rc, &wio->next, wio->err);
    ngx_free(wio);
}


static void
ngx_http_maestro_wf_io(ngx_http_maestro_wf_t *wf, ngx_http_maestro_io_pt fn,
    const char *node, int index, const char *error)
{
    ngx_http_maestro_wf_io_t  *wio;

    wio = ngx_calloc(sizeof(ngx_http_maestro_wf_io_t),
                     ngx_http_maestro_cycle->log);
    if (wio == NULL) {
        wf->lost = 1;
        ngx_http_maestro_wf_release(wf);
        return;
    }

    wio->wf = wf;
    wio->epoch = wf->epoch;
    wio->index = index;

    if (node != NULL) {
        ngx_cpystrn((u_char *) wio->node, (u_char *) node, sizeof(wio->node));
        ngx_cpystrn((u_char *) wio->error, (u_char *) error,
                    sizeof(wio->error));
    }

    /* ngx_http_maestro_wf_io_done() releases, also when not posted */
    wf->refs++;

    (void) ngx_http_maestro_io_post(wf->mmcf, fn, ngx_http_maestro_wf_io_done,
                                    wio);
}


/* runs in the event loop */
static void
ngx_http_maestro_step_timeout(ngx_event_t *ev)
{
    int                       state;
    char                      error[160];
    int64_t                   left;
    ngx_thread_task_t        *task = ev->data;
    ngx_http_maestro_step_t  *s;

    s = task->ctx;

    /*
     * A later step of the chain may be running, with its own time: the
     * state read first (acquire) makes its deadline visible. (Were that
     * step to end and the next to start between this read and the CAS,
     * the next one would be abandoned in its place; that needs a step
     * finishing exactly at its timeout plus the grace, and ends in a
     * timeout failure of the next step, which its retry policy handles.)
     */
    state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    left = __atomic_load_n(&s->deadline, __ATOMIC_RELAXED) - mst_mono_ms();

    if (left > 0) {
        ngx_add_timer(&s->timeout_ev, (ngx_msec_t) left);
        return;
    }

    if (state != MST_STEP_RUNNING
        || !__sync_bool_compare_and_swap(&s->state, MST_STEP_RUNNING,
                                         MST_STEP_ABANDONED))
    {
        /* the thread is committing: it ends, or runs the next step */
        ngx_add_timer(&s->timeout_ev, 100);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "maestro: workflow \"%s\" step \"%s\" timed out after "
                  "%L ms; abandoned", s->wf->id, s->step.node,
                  (int64_t) s->step.timeout_ms);

    /* its plugin may run on, but the next suspect need not wait for it */
    mst_run_lane_release(&s->wf->mmcf->env, s->step.lane);
    ngx_http_maestro_lane_kick(s->wf->mmcf);

    ngx_snprintf((u_char *) error, sizeof(error) - 1,
                 "timed out after %L ms%Z", (int64_t) s->step.timeout_ms);

    ngx_http_maestro_wf_io(s->wf, ngx_http_maestro_wf_io_fail, s->step.node,
                           s->step.index, error);
}


/* runs in the event loop */
static void
ngx_http_maestro_retry_handler(ngx_event_t *ev)
{
    ngx_http_maestro_wf_t  *wf = ev->data;

    ngx_http_maestro_lane_waits(wf, 0);

    if (wf->lost || wf->finished) {
        ngx_http_maestro_wf_release(wf);
        return;
    }

    ngx_http_maestro_wf_io(wf, wf->full ? ngx_http_maestro_wf_io_full
                                        : ngx_http_maestro_wf_io_begin,
                           NULL, -1, NULL);
}


/*
 * The suspect lane (core/flow/mst_run_lane.c): a workflow whose suspect
 * found it busy waits on its retry timer; when a step ends here with the
 * lane free, the first waiting workflow is woken at once instead.
 */
static void
ngx_http_maestro_lane_waits(ngx_http_maestro_wf_t *wf, ngx_uint_t wait)
{
    if (wf->lane_wait == (wait ? 1 : 0)) {
        return;
    }

    wf->lane_wait = wait ? 1 : 0;

    if (wait) {
        ngx_http_maestro_lane_waiting++;

    } else {
        ngx_http_maestro_lane_waiting--;
    }
}


/* runs in the event loop */
static void
ngx_http_maestro_lane_kick(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_queue_t            *q;
    ngx_http_maestro_wf_t  *wf;

    if (ngx_http_maestro_lane_waiting == 0 || mmcf->env.lane.holder != 0) {
        return;
    }

    for (q = ngx_queue_head(&mmcf->active);
         q != ngx_queue_sentinel(&mmcf->active);
         q = ngx_queue_next(q))
    {
        wf = ngx_queue_data(q, ngx_http_maestro_wf_t, queue);

        if (wf->lane_wait && wf->retry_ev.timer_set && !wf->lost
            && !wf->finished)
        {
            ngx_del_timer(&wf->retry_ev);
            ngx_add_timer(&wf->retry_ev, 1);
            return;
        }
    }
}


/* housekeeping: leases and orphans */

static void
ngx_http_maestro_hk_lost(const char *id, void *arg)
{
    ngx_http_maestro_hk_t  *hk = arg;

    json_array_append_new(hk->lost, json_string(id));
}


/* runs on a pool thread */
static void
ngx_http_maestro_hk_thread(void *arg)
{
    ngx_http_maestro_hk_t  *hk = arg;

    size_t          i;
    json_t         *ids;
    mst_run_env_t  *env;

    env = &hk->mmcf->env;

    /* also what /healthz shows (mst_store_space_last()) */
    hk->level = mst_store_level(env->store);
    (void) mst_store_space_last(env->store, &hk->space);

    (void) mst_run_renew(env, (const char *const *) hk->ids, hk->epochs,
                         hk->n, ngx_http_maestro_hk_lost, hk);

    if (hk->prune) {
        /* one worker does it, a slice at a time */
        (void) mst_run_prune(env, (int64_t) hk->mmcf->event_retention, 500,
                             hk->mmcf->prune_cursor, &hk->pruned);
    }

    if (hk->capacity == 0) {
        return;
    }

    if (mst_run_orphans(env, ngx_http_maestro_run_alive,
                        (const char *const *) hk->ids, hk->n, hk->capacity,
                        &ids)
        != MST_OK)
    {
        json_decref(ids);
        return;
    }

    hk->claims = calloc(json_array_size(ids) + 1,
                        sizeof(ngx_http_maestro_claim_t));
    if (hk->claims == NULL) {
        json_decref(ids);
        return;
    }

    for (i = 0; i < json_array_size(ids); i++) {
        ngx_http_maestro_claim_t  *c = &hk->claims[hk->nclaims];

        ngx_cpystrn((u_char *) c->id,
                    (u_char *) json_string_value(json_array_get(ids, i)),
                    sizeof(c->id));

        c->rc = mst_run_claim(env, c->id, 1, ngx_http_maestro_run_alive,
                              &c->next, NULL, 0);
        if (c->rc == MST_OK) {
            hk->nclaims++;
        }
    }

    json_decref(ids);
}


/* runs in the event loop: the store crossed its headroom, either way */
static void
ngx_http_maestro_run_level_log(ngx_http_maestro_main_conf_t *mmcf,
    ngx_http_maestro_hk_t *hk)
{
    ngx_log_t  *log;

    log = ngx_http_maestro_cycle->log;

    if (hk->level == MST_STORE_ROOM) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "maestro: the store has room again: %uz of %uz "
                      "bytes in use", hk->space.used, hk->space.map);

    } else if (mmcf->store_level == MST_STORE_ROOM) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "maestro: the store is full: %uz of %uz bytes in "
                      "use, the last %uz kept (maestro_store_headroom); "
                      "new workflows get 507 store_full, running ones end "
                      "as store_full; raise maestro_store_size and reload",
                      hk->space.used, hk->space.map, hk->space.headroom);
    }

    mmcf->store_level = hk->level;
}


/* runs in the event loop */
static void
ngx_http_maestro_hk_done(void *arg, ngx_int_t rc)
{
    ngx_http_maestro_hk_t  *hk = arg;

    size_t                         i;
    ngx_queue_t                   *q;
    const char                    *id;
    ngx_http_maestro_wf_t         *wf;
    ngx_http_maestro_main_conf_t  *mmcf;

    mmcf = hk->mmcf;

    for (i = 0; i < json_array_size(hk->lost); i++) {
        id = json_string_value(json_array_get(hk->lost, i));

        for (q = ngx_queue_head(&mmcf->active);
             q != ngx_queue_sentinel(&mmcf->active);
             q = ngx_queue_next(q))
        {
            wf = ngx_queue_data(q, ngx_http_maestro_wf_t, queue);

            if (ngx_strcmp(wf->id, id) == 0 && !wf->finished) {
                ngx_log_error(NGX_LOG_WARN, ngx_http_maestro_cycle->log, 0,
                              "maestro: lease of workflow \"%s\" lost", id);
                wf->lost = 1;
                ngx_http_maestro_wf_release(wf);
                break;
            }
        }
    }

    if (rc == NGX_OK && hk->level != mmcf->store_level) {
        ngx_http_maestro_run_level_log(mmcf, hk);
    }

    if (hk->pruned) {
        ngx_log_error(NGX_LOG_INFO, ngx_http_maestro_cycle->log, 0,
                      "maestro: dropped the event logs of %uz finished "
                      "workflows (maestro_event_retention)", hk->pruned);
    }

    for (i = 0; i < hk->nclaims; i++) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_http_maestro_cycle->log, 0,
                      "maestro: claimed workflow \"%s\"", hk->claims[i].id);
        ngx_http_maestro_run_adopt(mmcf, hk->claims[i].id,
                                   &hk->claims[i].next);
    }

    for (i = 0; i < hk->n; i++) {
        ngx_free(hk->ids[i]);
    }

    ngx_free(hk->ids);
    ngx_free(hk->epochs);
    free(hk->claims);
    json_decref(hk->lost);
    ngx_free(hk);

    mmcf->housekeeping_busy = 0;
}


/* runs in the event loop */
static void
ngx_http_maestro_housekeeping(ngx_event_t *ev)
{
    ngx_http_maestro_main_conf_t  *mmcf = ev->data;

    size_t                   n;
    ngx_queue_t             *q;
    ngx_http_maestro_hk_t   *hk;
    ngx_http_maestro_wf_t   *wf;

    if (ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, ngx_max(mmcf->lease_timeout / 3, 100));

    if (mmcf->housekeeping_busy) {
        return;
    }

    hk = ngx_calloc(sizeof(ngx_http_maestro_hk_t), ev->log);
    if (hk == NULL) {
        return;
    }

    hk->mmcf = mmcf;
    hk->lost = json_array();
    hk->prune = (mmcf->event_retention > 0 && ngx_worker == 0);
    hk->capacity = ngx_http_maestro_run_can_accept(mmcf)
                   ? mmcf->queue_size - mmcf->nactive : 0;

    hk->ids = ngx_calloc((mmcf->nactive + 1) * sizeof(char *), ev->log);
    hk->epochs = ngx_calloc((mmcf->nactive + 1) * sizeof(uint64_t), ev->log);

    if (hk->lost == NULL || hk->ids == NULL || hk->epochs == NULL) {
        goto failed;
    }

    n = 0;

    for (q = ngx_queue_head(&mmcf->active);
         q != ngx_queue_sentinel(&mmcf->active);
         q = ngx_queue_next(q))
    {
        wf = ngx_queue_data(q, ngx_http_maestro_wf_t, queue);

        if (wf->lost || wf->finished) {
            continue;
        }

        hk->ids[n] = ngx_alloc(MST_ID_LEN + 1, ev->log);
        if (hk->ids[n] == NULL) {
            break;
        }

        ngx_memcpy(hk->ids[n], wf->id, MST_ID_LEN + 1);
        hk->epochs[n] = wf->epoch;
        n++;
    }

    hk->n = n;

    /* a failed post has freed hk (ngx_http_maestro_hk_done) */
    if (ngx_http_maestro_io_post(mmcf, ngx_http_maestro_hk_thread,
                                 ngx_http_maestro_hk_done, hk)
        == NGX_OK)
    {
        mmcf->housekeeping_busy = 1;
    }

    return;

failed:

    if (hk->ids) {
        for (n = 0; n < hk->n; n++) {
            ngx_free(hk->ids[n]);
        }
        ngx_free(hk->ids);
    }

    ngx_free(hk->epochs);
    json_decref(hk->lost);
    ngx_free(hk);
}


/*
 * Runs in the event loop: subscribers pump when anything was committed
 * since they last looked. Called after each of this worker's own commits
 * (no wait for the poll) and by the poll timer (other workers' commits).
 */
static void
ngx_http_maestro_run_wake(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_atomic_uint_t  gen;

    gen = mmcf->sh->generation;

    if (gen != mmcf->seen_generation) {
        mmcf->seen_generation = gen;
        mmcf->wake_epoch++;

        /* the streams of the workflows that got events */
        (void) ngx_http_maestro_watch_drain(mmcf);

        /* and those that follow the feed of all workflows */
        ngx_http_maestro_sse_wakeup(mmcf);
        ngx_http_maestro_ws_wakeup(mmcf);
    }
}


/* runs in the event loop: cross-worker wake-up of subscribers */
static void
ngx_http_maestro_poll(ngx_event_t *ev)
{
    ngx_http_maestro_main_conf_t  *mmcf = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        /* subscribers reconnect to a new worker with Last-Event-ID */
        ngx_http_maestro_sse_shutdown(mmcf);
        ngx_http_maestro_ws_shutdown(mmcf);
        return;
    }

    ngx_http_maestro_run_wake(mmcf);

    ngx_add_timer(ev, mmcf->poll_interval);
}
