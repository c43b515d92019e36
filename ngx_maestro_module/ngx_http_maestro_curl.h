/*
 * Copyright (C) Maestro authors
 */

/*
 * libcurl's multi interface on the event loop (ngx_http_maestro_curl.c).
 */

#ifndef _NGX_HTTP_MAESTRO_CURL_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_CURL_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * The caller sets up easy (its callbacks run on the event loop) and
 * done; done(data, result) is called once when the transfer ends, unless
 * ngx_http_maestro_curl_stop() was called first.
 */
typedef void (*ngx_http_maestro_curl_done_pt)(void *data, int result);

typedef struct {
    void                            *easy;      /* CURL * */
    ngx_http_maestro_curl_done_pt    done;
    void                            *data;
    unsigned                         active:1;
} ngx_http_maestro_curl_xfer_t;

ngx_int_t ngx_http_maestro_curl_init_worker(ngx_cycle_t *cycle);
void ngx_http_maestro_curl_exit_worker(void);
ngx_int_t ngx_http_maestro_curl_start(ngx_http_maestro_curl_xfer_t *x);
void ngx_http_maestro_curl_stop(ngx_http_maestro_curl_xfer_t *x);
ngx_uint_t ngx_http_maestro_curl_running(void);
/* an easy handle (a kept one or a new one: curl_easy_reset() it before
   use), and its return */
void *ngx_http_maestro_curl_easy(void);
void ngx_http_maestro_curl_release(void *easy);

#endif /* _NGX_HTTP_MAESTRO_CURL_H_INCLUDED_ */
