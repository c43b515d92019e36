/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * libcurl's multi interface driven by the nginx event loop, one multi
 * handle per worker: the event-driven HTTP client of the LLM gateway's
 * pass-through. Thousands of transfers in flight cost sockets and memory,
 * not threads.
 *
 *  - CURLMOPT_SOCKETFUNCTION: each socket curl wants watched gets an
 *    ngx_connection_t (ngx_get_connection(), not closed by us: curl owns
 *    the descriptor) whose read / write events are added level-triggered,
 *    as curl expects, and removed when curl says CURL_POLL_REMOVE.
 *  - CURLMOPT_TIMERFUNCTION: one nginx timer; when it fires, or a socket
 *    is ready, curl_multi_socket_action() runs the transfers, and the
 *    finished ones are handed to their done() callbacks.
 *  - Callbacks of a transfer (write, header, done) run inside
 *    curl_multi_socket_action(), on the event loop: they may write to an
 *    nginx request, and may remove their own handle only from done().
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_curl.h"


#define NGX_HTTP_MAESTRO_CURL_IDLE  256


typedef struct {
    CURLM          *multi;
    ngx_event_t     timer;
    ngx_log_t      *log;
    ngx_uint_t      running;        /* transfers added and not done */
    ngx_uint_t      depth;          /* inside curl_multi_socket_action */

    /* easy handles kept for the next transfers (their buffers, DNS) */
    CURL           *idle[NGX_HTTP_MAESTRO_CURL_IDLE];
    ngx_uint_t      nidle;
} ngx_http_maestro_curl_t;


static ngx_http_maestro_curl_t  ngx_http_maestro_curl;


static void
ngx_http_maestro_curl_check(void)
{
    int                              left;
    CURL                            *easy;
    CURLMsg                         *msg;
    ngx_http_maestro_curl_done_pt    done;
    void                            *data;
    ngx_http_maestro_curl_xfer_t    *x;

    while ((msg = curl_multi_info_read(ngx_http_maestro_curl.multi, &left))
           != NULL)
    {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        x = NULL;
        (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &x);

        curl_multi_remove_handle(ngx_http_maestro_curl.multi, easy);
        ngx_http_maestro_curl.running--;

        if (x == NULL) {
            continue;
        }

        done = x->done;
        data = x->data;
        x->active = 0;

        done(data, msg->data.result);
    }
}


static void
ngx_http_maestro_curl_action(ngx_socket_t s, int what)
{
    int        running;
    CURLMcode  mc;

    ngx_http_maestro_curl.depth++;

    mc = curl_multi_socket_action(ngx_http_maestro_curl.multi,
                                  s == (ngx_socket_t) -1 ? CURL_SOCKET_TIMEOUT
                                                         : s,
                                  what, &running);

    ngx_http_maestro_curl.depth--;

    if (mc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, ngx_http_maestro_curl.log, 0,
                      "maestro: curl_multi_socket_action() failed: %s",
                      curl_multi_strerror(mc));
    }

    if (ngx_http_maestro_curl.depth == 0) {
        ngx_http_maestro_curl_check();
    }
}


static void
ngx_http_maestro_curl_event(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    ngx_http_maestro_curl_action(c->fd, ev->write ? CURL_CSELECT_OUT
                                                  : CURL_CSELECT_IN);
}


static void
ngx_http_maestro_curl_timer(ngx_event_t *ev)
{
    ngx_http_maestro_curl_action((ngx_socket_t) -1, 0);
}


static int
ngx_http_maestro_curl_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    ngx_event_t  *ev = &ngx_http_maestro_curl.timer;

    if (timeout_ms < 0) {
        if (ev->timer_set) {
            ngx_del_timer(ev);
        }
        if (ev->posted) {
            ngx_delete_posted_event(ev);
        }
        return 0;
    }

    if (timeout_ms == 0) {
        /*
         * at once, but never from inside curl: after the events of this
         * turn of the loop, without a turn (and an epoll_wait) of its own
         */
        if (!ev->posted) {
            ngx_post_event(ev, &ngx_posted_events);
        }
        return 0;
    }

    ngx_add_timer(ev, (ngx_msec_t) timeout_ms);

    return 0;
}


static ngx_int_t
ngx_http_maestro_curl_watch(ngx_event_t *ev, int on, ngx_uint_t event)
{
    if (on && !ev->active) {
        return ngx_add_event(ev, event, NGX_LEVEL_EVENT);
    }

    if (!on && ev->active) {
        return ngx_del_event(ev, event, 0);
    }

    return NGX_OK;
}


static int
ngx_http_maestro_curl_socket_cb(CURL *easy, curl_socket_t s, int what,
    void *arg, void *sockp)
{
    ngx_connection_t  *c = sockp;

    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            (void) ngx_http_maestro_curl_watch(c->read, 0, NGX_READ_EVENT);
            (void) ngx_http_maestro_curl_watch(c->write, 0, NGX_WRITE_EVENT);
            curl_multi_assign(ngx_http_maestro_curl.multi, s, NULL);
            c->fd = (ngx_socket_t) -1;     /* curl closes it */
            ngx_free_connection(c);
        }
        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, ngx_http_maestro_curl.log);
        if (c == NULL) {
            return -1;
        }

        c->read->handler = ngx_http_maestro_curl_event;
        c->write->handler = ngx_http_maestro_curl_event;
        c->read->log = ngx_http_maestro_curl.log;
        c->write->log = ngx_http_maestro_curl.log;
        c->data = NULL;

        curl_multi_assign(ngx_http_maestro_curl.multi, s, c);
    }

    if (ngx_http_maestro_curl_watch(c->read,
                                    what == CURL_POLL_IN
                                    || what == CURL_POLL_INOUT,
                                    NGX_READ_EVENT)
        != NGX_OK
        || ngx_http_maestro_curl_watch(c->write,
                                       what == CURL_POLL_OUT
                                       || what == CURL_POLL_INOUT,
                                       NGX_WRITE_EVENT)
        != NGX_OK)
    {
        return -1;
    }

    return 0;
}


ngx_int_t
ngx_http_maestro_curl_init_worker(ngx_cycle_t *cycle)
{
    CURLM  *multi;

    multi = curl_multi_init();
    if (multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "maestro: curl_multi_init() failed");
        return NGX_ERROR;
    }

    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_maestro_curl_socket_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_maestro_curl_timer_cb);
    /* keep-alive connections to the providers, shared by all transfers */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 256L);

    ngx_http_maestro_curl.multi = multi;
    ngx_http_maestro_curl.log = cycle->log;
    ngx_http_maestro_curl.timer.handler = ngx_http_maestro_curl_timer;
    ngx_http_maestro_curl.timer.log = cycle->log;
    ngx_http_maestro_curl.timer.data = &ngx_http_maestro_curl;
    /* a graceful exit does not wait for it */
    ngx_http_maestro_curl.timer.cancelable = 1;

    return NGX_OK;
}


void
ngx_http_maestro_curl_exit_worker(void)
{
    while (ngx_http_maestro_curl.nidle > 0) {
        curl_easy_cleanup(
            ngx_http_maestro_curl.idle[--ngx_http_maestro_curl.nidle]);
    }

    if (ngx_http_maestro_curl.multi != NULL) {
        curl_multi_cleanup(ngx_http_maestro_curl.multi);
        ngx_http_maestro_curl.multi = NULL;
    }
}


ngx_int_t
ngx_http_maestro_curl_start(ngx_http_maestro_curl_xfer_t *x)
{
    CURLMcode  mc;

    if (ngx_http_maestro_curl.multi == NULL) {
        return NGX_ERROR;
    }

    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);

    mc = curl_multi_add_handle(ngx_http_maestro_curl.multi, x->easy);
    if (mc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_maestro_curl.log, 0,
                      "maestro: curl_multi_add_handle() failed: %s",
                      curl_multi_strerror(mc));
        return NGX_ERROR;
    }

    x->active = 1;
    ngx_http_maestro_curl.running++;

    /*
     * Start it now rather than on the next turn of the loop (curl asked
     * for a 0 ms timer), unless this is a callback inside curl already.
     */
    if (ngx_http_maestro_curl.depth == 0) {
        ngx_http_maestro_curl_action((ngx_socket_t) -1, 0);
    }

    return NGX_OK;
}


void
ngx_http_maestro_curl_stop(ngx_http_maestro_curl_xfer_t *x)
{
    if (!x->active) {
        return;
    }

    curl_multi_remove_handle(ngx_http_maestro_curl.multi, x->easy);
    ngx_http_maestro_curl.running--;
    x->active = 0;
}


void *
ngx_http_maestro_curl_easy(void)
{
    if (ngx_http_maestro_curl.nidle > 0) {
        return ngx_http_maestro_curl.idle[--ngx_http_maestro_curl.nidle];
    }

    return curl_easy_init();
}


void
ngx_http_maestro_curl_release(void *easy)
{
    if (easy == NULL) {
        return;
    }

    if (ngx_http_maestro_curl.multi != NULL
        && ngx_http_maestro_curl.nidle < NGX_HTTP_MAESTRO_CURL_IDLE)
    {
        /* reset by whoever takes it next, before any use */
        ngx_http_maestro_curl.idle[ngx_http_maestro_curl.nidle++] = easy;
        return;
    }

    curl_easy_cleanup(easy);
}


ngx_uint_t
ngx_http_maestro_curl_running(void)
{
    return ngx_http_maestro_curl.running;
}
