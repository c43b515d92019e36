/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The plugins' LLM calls go through the same event-driven engine as the
 * /v1 pass-through (ngx_http_maestro_engine.c): retries, breakers,
 * fallbacks and latency figures live in one place, and a call waiting on
 * a slow provider holds a socket, not a libcurl transfer of its own.
 *
 *  - The plugin's pool thread (mst_host's llm_chat, through the env's
 *    llm_chat hook) queues a job and writes to an eventfd that the worker's
 *    event loop watches; then it waits on the job's condition variable.
 *  - The loop drains the queue and starts each job on the engine. Text
 *    streamed by the provider is appended to the job under its lock and
 *    the thread is woken: the thread, not the loop, calls the plugin's
 *    chunk callback (it may write events to the store, which the loop
 *    must never wait for).
 *  - Cancellation: the waiting thread polls the plugin's cancelled()
 *    every 50 ms; a cancelled call, or a chunk callback that asks to
 *    stop, sets abort and kicks the loop, which stops the transfer.
 *  - The job is freed by whichever of the two lets go of it last.
 *  - The loop's side of a job is here too (the end of this file): the
 *    engine's call (ngx_http_maestro_engine.h) with the job as its sink,
 *    the text handed over as it streams, the answer assembled at the end.
 *  - A worker that is being terminated (ngx_terminate) no longer runs its
 *    loop. A waiting thread does not fail its step (that would be
 *    committed): the master kills the worker, and another one runs the
 *    step again from the checkpoint. Only if nobody does, after 5 s, it
 *    gives up so that the thread pool can be joined.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/eventfd.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_llm.h"
#include "ngx_http_maestro_engine.h"


#define NGX_HTTP_MAESTRO_LLM_POLL  50       /* ms: cancellation checks */
#define NGX_HTTP_MAESTRO_LLM_GONE  5000     /* ms: see the wait loop */


typedef struct {
    pthread_mutex_t                lock;
    ngx_http_maestro_job_t        *head;    /* queued, newest first */
    int                            fd;      /* eventfd */
    ngx_connection_t              *c;
    ngx_queue_t                    active;  /* the loop's */
    ngx_http_maestro_main_conf_t  *mmcf;
    ngx_log_t                     *log;
    volatile ngx_uint_t            up;
} ngx_http_maestro_llm_engine_t;


static ngx_http_maestro_llm_engine_t  ngx_http_maestro_llm = {
    PTHREAD_MUTEX_INITIALIZER, NULL, -1, NULL, { NULL, NULL }, NULL, NULL, 0
};


static void
ngx_http_maestro_job_release(ngx_http_maestro_job_t *job)
{
    ngx_uint_t  refs;

    pthread_mutex_lock(&job->lock);
    refs = --job->refs;
    pthread_mutex_unlock(&job->lock);

    if (refs > 0) {
        return;
    }

    json_decref(job->request);
    json_decref(job->response);
    free(job->text);
    pthread_cond_destroy(&job->cond);
    pthread_mutex_destroy(&job->lock);
    free(job);
}


static void
ngx_http_maestro_llm_kick(void)
{
    uint64_t  one = 1;

    if (write(ngx_http_maestro_llm.fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is pending already, the loop will look */
    }
}


/* the loop: new jobs to start, aborted ones to stop */
static void
ngx_http_maestro_llm_read(ngx_event_t *ev)
{
    uint64_t                 n;
    ngx_queue_t             *q, *nq;
    ngx_http_maestro_job_t  *job, *next, *list;

    while (read(ngx_http_maestro_llm.fd, &n, sizeof(n)) > 0) {
        /* drained */
    }

    pthread_mutex_lock(&ngx_http_maestro_llm.lock);
    list = ngx_http_maestro_llm.head;
    ngx_http_maestro_llm.head = NULL;
    pthread_mutex_unlock(&ngx_http_maestro_llm.lock);

    /* aborted calls in flight */

    for (q = ngx_queue_head(&ngx_http_maestro_llm.active);
         q != ngx_queue_sentinel(&ngx_http_maestro_llm.active);
         q = nq)
    {
        nq = ngx_queue_next(q);
        job = ngx_queue_data(q, ngx_http_maestro_job_t, active);

        if (__atomic_load_n(&job->abort, __ATOMIC_ACQUIRE)) {
            ngx_http_maestro_passthru_cancel(job);
        }
    }

    /* new ones, oldest first */

    for (next = NULL; list != NULL; list = job) {
        job = list->next;
        list->next = next;
        next = list;
    }

    for (job = next; job != NULL; job = next) {
        next = job->next;
        job->next = NULL;

        ngx_queue_insert_tail(&ngx_http_maestro_llm.active, &job->active);

        if (ngx_http_maestro_passthru_job(job, ngx_http_maestro_llm.mmcf->gw,
                                          ngx_http_maestro_llm.log)
            != NGX_OK)
        {
            ngx_http_maestro_job_complete(job, MST_ERROR, NULL, NULL,
                                          "cannot start the call");
        }
    }
}


/* the loop: text for the plugin */
void
ngx_http_maestro_job_text(ngx_http_maestro_job_t *job, const char *p,
    size_t n)
{
    u_char  *t;
    size_t   cap;

    pthread_mutex_lock(&job->lock);

    if (job->text_cap - job->ntext < n) {
        cap = job->text_cap ? job->text_cap : 256;
        while (cap - job->ntext < n) {
            cap *= 2;
        }

        t = realloc(job->text, cap);
        if (t == NULL) {
            pthread_mutex_unlock(&job->lock);
            return;
        }

        job->text = t;
        job->text_cap = cap;
    }

    ngx_memcpy(job->text + job->ntext, p, n);
    job->ntext += n;

    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->lock);
}


/*
 * A workflow's model call used tokens: the key that submitted the
 * workflow pays them from its tpm and tpd (its budget counts them in the
 * step's transaction, mst_run)
 */
static void
ngx_http_maestro_job_charge(ngx_http_maestro_job_t *job, json_t *response)
{
    json_t                        *rec, *total;
    mst_txn_t                     *txn;
    ngx_http_maestro_main_conf_t  *mmcf;

    total = json_object_get(json_object_get(response, "usage"),
                            "total_tokens");

    if (job->key_id[0] == '\0' || !json_is_integer(total)
        || json_integer_value(total) <= 0)
    {
        return;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_maestro_module);

    if (mst_txn_begin(mmcf->env.store, 1, &txn) != MST_OK) {
        return;
    }

    if (mst_store_key_get(txn, job->key_id, &rec) == MST_OK) {
        ngx_http_maestro_limit_key_charge(rec,
                                          (uint64_t) json_integer_value(total));
        json_decref(rec);
    }

    mst_txn_abort(txn);
}


/* the loop: the call is over; the loop lets go of the job */
void
ngx_http_maestro_job_complete(ngx_http_maestro_job_t *job, int rc,
    json_t *response, const char *used, const char *err)
{
    if (rc == MST_OK) {
        ngx_http_maestro_job_charge(job, response);
    }

    if (job->active.next != NULL) {
        ngx_queue_remove(&job->active);
        job->active.next = NULL;
    }

    job->call = NULL;

    pthread_mutex_lock(&job->lock);
    job->rc = rc;
    job->response = response;
    job->used = used;
    if (err != NULL) {
        ngx_cpystrn((u_char *) job->err, (u_char *) err, sizeof(job->err));
    }
    job->done = 1;
    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->lock);

    ngx_http_maestro_job_release(job);
}


/* a pool thread: the env's llm_chat hook (see mst_run.h) */
static int
ngx_http_maestro_llm_chat(void *arg, json_t *request,
    const mst_llm_call_t *call, json_t **response, const char **used,
    char *err, size_t errlen)
{
    int                      rc, stop;
    char                    *text;
    int64_t                  gone;
    size_t                   n;
    struct timespec          ts;
    ngx_http_maestro_job_t  *job;

    *response = NULL;
    *used = NULL;

    if (!ngx_http_maestro_llm.up) {
        return mst_err(err, errlen, MST_ERROR, "the LLM engine is not up");
    }

    job = calloc(1, sizeof(ngx_http_maestro_job_t));
    if (job == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    pthread_mutex_init(&job->lock, NULL);
    pthread_cond_init(&job->cond, NULL);
    job->refs = 2;
    job->request = json_incref(request);
    job->stream = call->on_chunk != NULL;
    job->deadline = call->deadline;

    if (call->key_id != NULL) {
        ngx_cpystrn((u_char *) job->key_id, (u_char *) call->key_id,
                    sizeof(job->key_id));
    }

    pthread_mutex_lock(&ngx_http_maestro_llm.lock);
    job->next = ngx_http_maestro_llm.head;
    ngx_http_maestro_llm.head = job;
    pthread_mutex_unlock(&ngx_http_maestro_llm.lock);

    ngx_http_maestro_llm_kick();

    gone = 0;

    pthread_mutex_lock(&job->lock);

    for ( ;; ) {
        if (job->ntext > 0) {
            /* the plugin's callback, on this thread, without the lock */
            n = job->ntext;
            text = malloc(n);
            if (text != NULL) {
                ngx_memcpy(text, job->text, n);
            }
            job->ntext = 0;
            pthread_mutex_unlock(&job->lock);

            stop = (text == NULL)
                   || call->on_chunk(text, n, call->chunk_arg) != 0;
            free(text);

            pthread_mutex_lock(&job->lock);

            if (stop && !job->done && !job->abort) {
                __atomic_store_n(&job->abort, 1, __ATOMIC_RELEASE);
                ngx_http_maestro_llm_kick();
            }
            continue;
        }

        if (job->done) {
            break;
        }

        if ((ngx_terminate || !ngx_http_maestro_llm.up) && gone == 0) {
            gone = mst_mono_ms();
        }

        if (gone && mst_mono_ms() - gone > NGX_HTTP_MAESTRO_LLM_GONE) {
            /*
             * The loop is gone and will not finish this job. The master
             * kills a worker that does not exit ~1.5 s after SIGTERM, and
             * the step then runs again elsewhere, as after a crash; this
             * is for a worker that nobody kills (no master process).
             */
            __atomic_store_n(&job->abort, 1, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&job->lock);
            ngx_http_maestro_job_release(job);
            return mst_err(err, errlen, MST_ECANCELLED,
                           "the worker is exiting");
        }

        if (!job->abort && call->cancelled != NULL
            && call->cancelled(call->cancel_arg))
        {
            __atomic_store_n(&job->abort, 1, __ATOMIC_RELEASE);
            ngx_http_maestro_llm_kick();
        }

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += NGX_HTTP_MAESTRO_LLM_POLL * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }

        (void) pthread_cond_timedwait(&job->cond, &job->lock, &ts);
    }

    rc = job->rc;
    *response = job->response;
    job->response = NULL;
    *used = job->used;

    if (rc != MST_OK) {
        mst_err(err, errlen, rc, "%s", job->err);
    }

    pthread_mutex_unlock(&job->lock);
    ngx_http_maestro_job_release(job);

    return rc;
}


ngx_int_t
ngx_http_maestro_llm_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    int                fd;
    ngx_connection_t  *c;

    if (!mst_gateway_online(mmcf->gw)) {
        return NGX_OK;          /* offline: answered on the thread */
    }

    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "maestro: eventfd() failed");
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        close(fd);
        return NGX_ERROR;
    }

    c->read->handler = ngx_http_maestro_llm_read;
    c->read->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    ngx_queue_init(&ngx_http_maestro_llm.active);
    ngx_http_maestro_llm.fd = fd;
    ngx_http_maestro_llm.c = c;
    ngx_http_maestro_llm.mmcf = mmcf;
    ngx_http_maestro_llm.log = cycle->log;
    ngx_http_maestro_llm.up = 1;

    mmcf->env.llm_chat = ngx_http_maestro_llm_chat;
    mmcf->env.llm_chat_arg = mmcf;

    return NGX_OK;
}


void
ngx_http_maestro_llm_exit_worker(void)
{
    ngx_http_maestro_llm.up = 0;

    if (ngx_http_maestro_llm.c != NULL) {
        ngx_close_connection(ngx_http_maestro_llm.c);
        ngx_http_maestro_llm.c = NULL;
        ngx_http_maestro_llm.fd = -1;
    }
}


/* ---- the loop's side: the call on the engine ----------------------- */


/*
 * A plugin's call: one event of the stream, parsed once (mst_oai): its
 * text goes to the waiting thread, the answer is assembled for the end.
 * NGX_DECLINED: a malformed or error event (pt->answer.error says).
 */
ngx_int_t
ngx_http_maestro_engine_job_event(ngx_http_maestro_call_t *pt,
    const char *p, size_t n)
{
    size_t  added;

    if (mst_oai_answer_event(&pt->answer, p, n, pt->sse.error, &added)
        != MST_OK)
    {
        /* before the first good one, the next provider may answer */
        return NGX_DECLINED;
    }

    if (!pt->started) {
        pt->started = 1;
        pt->first_ms = mst_mono_ms();
    }

    if (added > 0) {
        ngx_http_maestro_job_text(pt->job, pt->answer.content.data
                                           + pt->answer.content.len - added,
                                  added);
    }

    pt->done_marker = pt->answer.done;

    return NGX_OK;
}


/*
 * The chat.completion a plugin gets: the provider's own when it was not
 * streamed, else assembled from the chunks; completed by mst_oai (usage
 * estimated when the provider gave none).
 */
static json_t *
ngx_http_maestro_engine_job_answer(ngx_http_maestro_call_t *pt)
{
    json_t                    *resp;
    const char                *model;
    const mst_llm_provider_t  *p;

    p = mst_gateway_provider(pt->gw, pt->member);
    model = pt->req_model ? pt->model : (p->model ? p->model : pt->model);

    if (pt->whole != NULL) {
        resp = pt->whole;
        pt->whole = NULL;
        mst_oai_complete(resp, pt->body, model);
        return resp;
    }

    return mst_oai_answer_json(&pt->answer, pt->body, model);
}


void
ngx_http_maestro_engine_job_finish(ngx_http_maestro_call_t *pt, ngx_int_t rc)
{
    int                      mrc;
    char                     err[256];
    json_t                  *resp;
    const char              *used;
    ngx_http_maestro_job_t  *job;

    job = pt->job;
    resp = NULL;
    used = NULL;
    mrc = pt->job_rc;

    if (mrc == MST_OK && rc == NGX_OK) {
        resp = ngx_http_maestro_engine_job_answer(pt);
        used = mst_gateway_provider(pt->gw, pt->member)->name;
        mrc = resp ? MST_OK : MST_ENOMEM;

    } else if (mrc == MST_OK) {
        mrc = MST_EUPSTREAM;
    }

    ngx_cpystrn((u_char *) err, (u_char *) (pt->last_err[0]
                                            ? pt->last_err
                                            : "the call failed"),
                sizeof(err));

    ngx_http_maestro_engine_cleanup(pt);
    ngx_free(pt);

    ngx_http_maestro_job_complete(job, mrc, resp, used,
                                  mrc == MST_OK ? NULL : err);
}


/* the plugin's thread gave up (cancelled, or its callback said stop) */
void
ngx_http_maestro_passthru_cancel(ngx_http_maestro_job_t *job)
{
    ngx_http_maestro_call_t  *pt = job->call;

    if (pt == NULL || pt->finished) {
        return;
    }

    if (ngx_http_maestro_engine_active(pt)) {
        ngx_http_maestro_engine_stop(pt);
        mst_gateway_done(pt->gw, pt->member, -1, 0);
    }

    pt->job_rc = MST_ECANCELLED;
    ngx_cpystrn((u_char *) pt->last_err, (u_char *) "cancelled",
                sizeof(pt->last_err));

    ngx_http_maestro_engine_finish(pt, NGX_ERROR);
}


ngx_int_t
ngx_http_maestro_passthru_job(ngx_http_maestro_job_t *job, mst_gateway_t *gw,
    ngx_log_t *log)
{
    json_t                   *model;
    ngx_http_maestro_call_t  *pt;

    pt = ngx_calloc(sizeof(ngx_http_maestro_call_t), log);
    if (pt == NULL) {
        return NGX_ERROR;
    }

    pt->job = job;
    pt->log = log;
    pt->gw = gw;
    pt->kind = "chat/completions";
    pt->body = json_incref(job->request);
    pt->stream = job->stream ? 1 : 0;

    model = json_object_get(pt->body, "model");
    pt->req_model = json_is_string(model) && json_string_length(model) > 0;
    ngx_cpystrn((u_char *) pt->model,
                (u_char *) (pt->req_model ? json_string_value(model) : ""),
                sizeof(pt->model));

    pt->norder = mst_gateway_plan_all(gw, pt->order);

    ngx_http_maestro_engine_init(pt);

    job->call = pt;

    if (__atomic_load_n(&job->abort, __ATOMIC_ACQUIRE)) {
        ngx_http_maestro_passthru_cancel(job);
        return NGX_OK;
    }

    ngx_http_maestro_engine_next(pt);

    return NGX_OK;
}
