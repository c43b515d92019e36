/*
 * Copyright (C) Maestro authors
 */

/*
 * The HTTP/1.1 client for http:// providers (ngx_http_maestro_h1.c).
 */

#ifndef _NGX_HTTP_MAESTRO_H1_H_INCLUDED_
#define _NGX_HTTP_MAESTRO_H1_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "mst_http1.h"
#include "ngx_http_maestro_module.h"


/*
 * On nginx connections with a keep-alive cache. The same contract as a curl
 * transfer: header() and write() as CURLOPT_HEADERFUNCTION and
 * CURLOPT_WRITEFUNCTION (less than n from write() aborts), done() once
 * with a CURLcode, never from inside start().
 */
struct ngx_http_maestro_h1_peer_s {
    struct sockaddr                 *sockaddr;
    socklen_t                        socklen;
    ngx_str_t                        name;      /* address, for logs */
    ngx_str_t                        host;      /* Host: */
    ngx_str_t                        path;      /* "" or "/v1" */
    ngx_queue_t                      idle;      /* kept connections */
#if (NGX_SSL)
    ngx_ssl_t                       *ssl;       /* https */
    ngx_str_t                        sni;       /* and the certificate's */
    ngx_ssl_session_t               *session;   /* the last, to resume */
#endif
};

typedef size_t (*ngx_http_maestro_h1_data_pt)(char *buf, size_t size,
    size_t n, void *arg);

typedef struct {
    /* the caller's */
    ngx_http_maestro_h1_peer_t      *peer;
    ngx_http_maestro_h1_data_pt      header;
    ngx_http_maestro_h1_data_pt      write;
    void                           (*done)(void *data, int result);
    void                            *data;
    ngx_log_t                       *log;
    ngx_msec_t                       connect_timeout;
    ngx_msec_t                       timeout;   /* the whole call */
    ngx_msec_t                       first_timeout; /* to the first byte
                                                       (0: timeout) */
    ngx_msec_t                       idle_timeout;  /* between bytes
                                                       (0: timeout) */
    long                             status;    /* once the head came */

    /* the transfer's */
    ngx_connection_t                *c;
    ngx_event_t                      timer;
    ngx_event_t                      later;     /* done(), or resume */
    ngx_msec_t                       deadline;
    ngx_str_t                        head;
    size_t                           head_cap;
    ngx_str_t                        body;
    ngx_buf_t                        bufs[2];
    ngx_chain_t                      chain[2];
    ngx_chain_t                     *out;       /* not yet sent */
    u_char                          *buf;       /* the response's bytes */
    size_t                           pos;
    size_t                           last;
    mst_http1_t                      resp;
    int                              result;
    unsigned                         active:1;
    unsigned                         connecting:1;  /* and TLS */
    unsigned                         reused:1;
    unsigned                         fresh:1;   /* no kept connection */
    unsigned                         sent:1;
    unsigned                         got:1;     /* any byte came back */
    unsigned                         paused:1;
} ngx_http_maestro_h1_t;

ngx_int_t ngx_http_maestro_h1_peer_conf(ngx_conf_t *cf, ngx_str_t *url,
    ngx_str_t *ca, ngx_http_maestro_h1_peer_t **peer);
void ngx_http_maestro_h1_init_worker(
    ngx_http_maestro_main_conf_t *mmcf);
/* fields: extra request header lines, each ending in CRLF; body NULL:
   a GET */
ngx_int_t ngx_http_maestro_h1_start(ngx_http_maestro_h1_t *x,
    const char *kind, const ngx_str_t *fields, const ngx_str_t *body);
void ngx_http_maestro_h1_stop(ngx_http_maestro_h1_t *x);
void ngx_http_maestro_h1_pause(ngx_http_maestro_h1_t *x, ngx_uint_t on);
void ngx_http_maestro_h1_free(ngx_http_maestro_h1_t *x);

#endif /* _NGX_HTTP_MAESTRO_H1_H_INCLUDED_ */
