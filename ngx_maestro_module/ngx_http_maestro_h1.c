/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The gateway's own HTTP/1.1 client (client=nginx; the default for
 * http:// providers such as vLLM, llama.cpp or Ollama next to the
 * gateway): nginx connections, nginx's edge-triggered events and its
 * writev, and a keep-alive cache per provider, as
 * ngx_http_upstream_keepalive keeps one. libcurl's multi interface costs
 * about a third more CPU per call than this (its level-triggered socket
 * watches, a poll() per transfer, its own allocations; bench/README.md
 * has the numbers). https:// goes through nginx's OpenSSL when asked;
 * by default it stays with libcurl, which resolves names per request.
 *
 *  - The same contract as a curl transfer, so the engine
 *    (ngx_http_maestro_engine.c) treats both alike: header() gets each
 *    field line, write() the body bytes (returning less aborts), done()
 *    once with a CURLcode, never from inside start(); pause and resume.
 *  - Addresses are resolved at configuration time, as proxy_pass does; a
 *    name that does not resolve then leaves that provider to libcurl.
 *  - A request on a kept connection that the provider had closed meanwhile
 *    (nothing at all came back) is sent once more on a new connection.
 *  - The response is parsed by core/mst_http1.c (no nginx headers, unit
 *    tested in pieces of every size).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_h1.h"


#define NGX_HTTP_MAESTRO_H1_BUF       8192      /* the head must fit */
#define NGX_HTTP_MAESTRO_H1_IDLE      256       /* kept, per worker */
#define NGX_HTTP_MAESTRO_H1_IDLE_MS   60000
#define NGX_HTTP_MAESTRO_H1_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"


typedef struct {
    ngx_queue_t                     queue;
    ngx_connection_t               *c;
    ngx_http_maestro_h1_peer_t     *peer;
} ngx_http_maestro_h1_idle_t;


static ngx_http_maestro_h1_idle_t   ngx_http_maestro_h1_items[
                                        NGX_HTTP_MAESTRO_H1_IDLE];
static ngx_queue_t                  ngx_http_maestro_h1_spare;


static void ngx_http_maestro_h1_connect(ngx_http_maestro_h1_t *x);
static void ngx_http_maestro_h1_send(ngx_http_maestro_h1_t *x);
static void ngx_http_maestro_h1_recv(ngx_http_maestro_h1_t *x);
#if (NGX_SSL)
static void ngx_http_maestro_h1_tls(ngx_http_maestro_h1_t *x);
#endif


/* a connection of ours: TLS dropped without waiting, then closed */
static void
ngx_http_maestro_h1_close(ngx_connection_t *c)
{
    ngx_pool_t  *pool;

#if (NGX_SSL)
    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }
#endif

    pool = c->pool;

    ngx_close_connection(c);

    if (pool != NULL) {
        ngx_destroy_pool(pool);
    }
}


/*
 * https: nginx's OpenSSL, TLS 1.2 and 1.3, the certificate verified
 * against ca (or the system's bundle) and the host name, sessions resumed
 */
static ngx_int_t
ngx_http_maestro_h1_tls_conf(ngx_conf_t *cf, ngx_http_maestro_h1_peer_t *p,
    ngx_url_t *u, ngx_str_t *ca)
{
#if (NGX_SSL)
    ngx_str_t            trusted;
    ngx_pool_cleanup_t  *cln;

    p->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (p->ssl == NULL) {
        return NGX_ERROR;
    }

    p->ssl->log = cf->log;

    if (ngx_ssl_create(p->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(p->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = p->ssl;

    if (ca->len) {
        trusted = *ca;
    } else {
        ngx_str_set(&trusted, NGX_HTTP_MAESTRO_H1_CA_BUNDLE);
    }

    if (ngx_ssl_trusted_certificate(cf, p->ssl, &trusted, 10) != NGX_OK
        || ngx_ssl_client_session_cache(cf, p->ssl, 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the name without its port, for SNI and the certificate */
    p->sni.len = u->host.len;
    p->sni.data = ngx_pnalloc(cf->pool, u->host.len + 1);
    if (p->sni.data == NULL) {
        return NGX_ERROR;
    }
    ngx_cpystrn(p->sni.data, u->host.data, u->host.len + 1);

    return NGX_OK;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "client=nginx: this nginx was built without SSL");
    return NGX_ERROR;
#endif
}


/* configuration: http[s]://host[:port][/path] of a provider */
ngx_int_t
ngx_http_maestro_h1_peer_conf(ngx_conf_t *cf, ngx_str_t *url, ngx_str_t *ca,
    ngx_http_maestro_h1_peer_t **peer)
{
    size_t                       skip;
    ngx_url_t                    u;
    ngx_uint_t                   tls;
    ngx_http_maestro_h1_peer_t  *p;

    *peer = NULL;

    tls = url->len > 8 && ngx_strncmp(url->data, "https://", 8) == 0;
    skip = tls ? 8 : 7;

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url.data = url->data + skip;
    u.url.len = url->len - skip;
    u.default_port = tls ? 443 : 80;
    u.uri_part = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "maestro_llm_provider \"%V\": %s; libcurl will "
                           "resolve it per request", url,
                           u.err ? u.err : "no address");
        return NGX_OK;
    }

    p = ngx_pcalloc(cf->pool, sizeof(ngx_http_maestro_h1_peer_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* the first address, as curl would take it */
    p->sockaddr = u.addrs[0].sockaddr;
    p->socklen = u.addrs[0].socklen;
    p->name = u.addrs[0].name;

    /* Host: what the URL says, with its port when it has one */
    p->host.data = u.url.data;
    p->host.len = u.uri.len ? (size_t) (u.uri.data - u.url.data)
                            : u.url.len;
    p->path = u.uri;            /* "" or "/v1" */

    if (tls && ngx_http_maestro_h1_tls_conf(cf, p, &u, ca) != NGX_OK) {
        return NGX_ERROR;
    }

    *peer = p;

    return NGX_OK;
}


void
ngx_http_maestro_h1_init_worker(ngx_http_maestro_main_conf_t *mmcf)
{
    ngx_uint_t                         i;
    ngx_http_maestro_provider_conf_t  *pc;

    ngx_queue_init(&ngx_http_maestro_h1_spare);

    for (i = 0; i < NGX_HTTP_MAESTRO_H1_IDLE; i++) {
        ngx_queue_insert_head(&ngx_http_maestro_h1_spare,
                              &ngx_http_maestro_h1_items[i].queue);
    }

    pc = mmcf->providers.elts;

    for (i = 0; i < mmcf->providers.nelts; i++) {
        if (pc[i].peer != NULL) {
            ngx_queue_init(&pc[i].peer->idle);
        }
    }
}


/* ---- the keep-alive cache ---------------------------------------------- */

static void
ngx_http_maestro_h1_idle_drop(ngx_http_maestro_h1_idle_t *item)
{
    ngx_http_maestro_h1_close(item->c);
    ngx_queue_remove(&item->queue);
    ngx_queue_insert_head(&ngx_http_maestro_h1_spare, &item->queue);
}


static void
ngx_http_maestro_h1_dummy(ngx_event_t *ev)
{
}


/* a kept connection: the provider closed it, sent something, or it aged */
static void
ngx_http_maestro_h1_idle_read(ngx_event_t *ev)
{
    int                          n;
    char                         buf[1];
    ngx_connection_t            *c = ev->data;
    ngx_http_maestro_h1_idle_t  *item = c->data;

    if (!c->close && !ev->timedout) {
        n = recv(c->fd, buf, 1, MSG_PEEK);

        if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
            ev->ready = 0;
            if (ngx_handle_read_event(ev, 0) == NGX_OK) {
                return;
            }
        }
    }

    ngx_http_maestro_h1_idle_drop(item);
}


static void
ngx_http_maestro_h1_keep(ngx_http_maestro_h1_peer_t *peer,
    ngx_connection_t *c)
{
    ngx_queue_t                 *q;
    ngx_http_maestro_h1_idle_t  *item;

    if (ngx_terminate || ngx_exiting) {
        ngx_http_maestro_h1_close(c);
        return;
    }

    if (ngx_queue_empty(&ngx_http_maestro_h1_spare)) {
        ngx_http_maestro_h1_close(c);
        return;
    }

    q = ngx_queue_head(&ngx_http_maestro_h1_spare);
    ngx_queue_remove(q);
    item = ngx_queue_data(q, ngx_http_maestro_h1_idle_t, queue);
    item->c = c;
    item->peer = peer;
    ngx_queue_insert_head(&peer->idle, q);

    c->data = item;
    c->idle = 1;
    c->read->handler = ngx_http_maestro_h1_idle_read;
    c->write->handler = ngx_http_maestro_h1_dummy;
    c->log = ngx_cycle->log;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;

    ngx_add_timer(c->read, NGX_HTTP_MAESTRO_H1_IDLE_MS);

    if (c->read->ready) {
        ngx_http_maestro_h1_idle_read(c->read);
    }
}


static ngx_connection_t *
ngx_http_maestro_h1_take(ngx_http_maestro_h1_peer_t *peer)
{
    ngx_queue_t                 *q;
    ngx_connection_t            *c;
    ngx_http_maestro_h1_idle_t  *item;

    if (ngx_queue_empty(&peer->idle)) {
        return NULL;
    }

    /* the most recently used: the least likely to have been closed */
    q = ngx_queue_head(&peer->idle);
    ngx_queue_remove(q);
    ngx_queue_insert_head(&ngx_http_maestro_h1_spare, q);

    item = ngx_queue_data(q, ngx_http_maestro_h1_idle_t, queue);
    c = item->c;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    c->idle = 0;

    return c;
}


/* ---- a transfer ------------------------------------------------------- */

/* what is left of the call's time */
static ngx_msec_t
ngx_http_maestro_h1_left(ngx_http_maestro_h1_t *x)
{
    ngx_msec_int_t  left;

    left = (ngx_msec_int_t) (x->deadline - ngx_current_msec);

    return left > 0 ? (ngx_msec_t) left : 1;
}


/*
 * How long to wait now: for the first byte of the answer, then between
 * two reads (a stream may last longer than either), never past the
 * whole call's deadline.
 */
static ngx_msec_t
ngx_http_maestro_h1_wait(ngx_http_maestro_h1_t *x)
{
    ngx_msec_t  wait, left;

    wait = x->got ? x->idle_timeout : x->first_timeout;
    left = ngx_http_maestro_h1_left(x);

    return (wait > 0 && wait < left) ? wait : left;
}


/* the end: the connection kept or closed, then done(), the last word */
static void
ngx_http_maestro_h1_end(ngx_http_maestro_h1_t *x, int result)
{
    ngx_connection_t  *c = x->c;

    x->active = 0;
    x->c = NULL;

    if (x->timer.timer_set) {
        ngx_del_timer(&x->timer);
    }
    if (x->later.posted) {
        ngx_delete_posted_event(&x->later);
    }

    if (c != NULL) {
        if (result == CURLE_OK && x->sent && mst_http1_reusable(&x->resp)
            && x->pos == x->last
#if (NGX_SSL)
            && (c->ssl == NULL || SSL_pending(c->ssl->connection) == 0)
#endif
           )
        {
            ngx_http_maestro_h1_keep(x->peer, c);

        } else {
            ngx_http_maestro_h1_close(c);
        }
    }

    x->done(x->data, result);
}


/* a failure; on a kept connection that said nothing, one more go */
static void
ngx_http_maestro_h1_fail(ngx_http_maestro_h1_t *x, int result)
{
    if (x->reused && !x->got && result != CURLE_OPERATION_TIMEDOUT
        && result != CURLE_WRITE_ERROR)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, x->log, 0,
                       "maestro h1: kept connection closed, again");

        ngx_http_maestro_h1_close(x->c);
        x->c = NULL;
        x->reused = 0;
        x->fresh = 1;
        ngx_http_maestro_h1_connect(x);
        return;
    }

    ngx_http_maestro_h1_end(x, result);
}


static void
ngx_http_maestro_h1_later(ngx_event_t *ev)
{
    ngx_http_maestro_h1_t  *x = ev->data;

    if (x->c == NULL) {
        ngx_http_maestro_h1_end(x, x->result);
        return;
    }

    /* resumed: the bytes kept, then the socket */
    ngx_http_maestro_h1_recv(x);
}


static void
ngx_http_maestro_h1_timeout(ngx_event_t *ev)
{
    ngx_http_maestro_h1_t  *x = ev->data;

    ngx_msec_int_t  left;

    left = (ngx_msec_int_t) (x->deadline - ngx_current_msec);

    if (x->paused && left > 0) {
        /* our client is slow, not the provider: only the whole call's
           time counts */
        ngx_add_timer(&x->timer, (ngx_msec_t) left);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, x->log, 0,
                  "maestro: provider %V timed out%s", &x->peer->name,
                  x->connecting ? " connecting"
                  : left <= 0 ? " (the whole call: total_timeout)"
                  : x->got ? " between two reads (idle_timeout)"
                  : " waiting for the first byte (timeout)");

    ngx_http_maestro_h1_end(x, x->connecting ? CURLE_COULDNT_CONNECT
                                             : CURLE_OPERATION_TIMEDOUT);
}


static void
ngx_http_maestro_h1_read_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_http_maestro_h1_t  *x = c->data;

    if (x->connecting) {
        /* a refused connect shows as readable: let send() say so */
        ngx_http_maestro_h1_send(x);
        return;
    }

    ngx_http_maestro_h1_recv(x);
}


static void
ngx_http_maestro_h1_write_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_http_maestro_h1_t  *x = c->data;

    if (x->connecting || x->out != NULL) {
        ngx_http_maestro_h1_send(x);
    }
}


static void
ngx_http_maestro_h1_attach(ngx_http_maestro_h1_t *x, ngx_connection_t *c)
{
    x->c = c;
    c->data = x;
    c->read->handler = ngx_http_maestro_h1_read_handler;
    c->write->handler = ngx_http_maestro_h1_write_handler;

    /* the request: head and body in one writev */
    x->bufs[0].pos = x->head.data;
    x->bufs[0].last = x->head.data + x->head.len;
    x->bufs[0].memory = 1;
    x->bufs[1].pos = x->body.data;
    x->bufs[1].last = x->body.data + x->body.len;
    x->bufs[1].memory = 1;
    /* TLS buffers until a flush: the request ends with one */
    x->bufs[0].flush = x->body.len == 0;
    x->bufs[1].flush = 1;
    x->chain[0].buf = &x->bufs[0];
    x->chain[0].next = x->body.len ? &x->chain[1] : NULL;
    x->chain[1].buf = &x->bufs[1];
    x->chain[1].next = NULL;
    x->out = &x->chain[0];

    x->sent = 0;
    x->got = 0;
    x->pos = 0;
    x->last = 0;
    mst_http1_init(&x->resp);
}


static void
ngx_http_maestro_h1_connect(ngx_http_maestro_h1_t *x)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_peer_connection_t   pc;

    c = x->fresh ? NULL : ngx_http_maestro_h1_take(x->peer);

    if (c != NULL) {
        x->reused = 1;
        x->connecting = 0;
        ngx_http_maestro_h1_attach(x, c);
        ngx_add_timer(&x->timer, ngx_http_maestro_h1_wait(x));
        ngx_http_maestro_h1_send(x);
        return;
    }

    ngx_memzero(&pc, sizeof(ngx_peer_connection_t));
    pc.sockaddr = x->peer->sockaddr;
    pc.socklen = x->peer->socklen;
    pc.name = &x->peer->name;
    pc.get = ngx_event_get_peer;
    pc.log = ngx_cycle->log;
    pc.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&pc);

    if (rc != NGX_OK && rc != NGX_AGAIN) {
        if (pc.connection != NULL) {
            ngx_http_maestro_h1_close(pc.connection);
        }

        /* done() never from inside start(): on the next turn */
        x->result = CURLE_COULDNT_CONNECT;
        ngx_post_event(&x->later, &ngx_posted_events);
        return;
    }

    x->reused = 0;
    x->connecting = 1;
    ngx_http_maestro_h1_attach(x, pc.connection);

    ngx_add_timer(&x->timer, ngx_min(x->connect_timeout,
                                     ngx_http_maestro_h1_left(x)));

    if (rc == NGX_OK) {
        ngx_http_maestro_h1_send(x);
    }
}


static void
ngx_http_maestro_h1_send(ngx_http_maestro_h1_t *x)
{
    int                err;
    socklen_t          len;
    ngx_chain_t       *cl;
    ngx_connection_t  *c = x->c;

    if (x->connecting) {
        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_log_error(NGX_LOG_ERR, x->log, err,
                          "maestro: connect() to %V failed",
                          &x->peer->name);
            ngx_http_maestro_h1_end(x, CURLE_COULDNT_CONNECT);
            return;
        }

        (void) ngx_tcp_nodelay(c);

#if (NGX_SSL)
        if (x->peer->ssl != NULL && c->ssl == NULL) {
            ngx_http_maestro_h1_tls(x);
            return;
        }
#endif

        x->connecting = 0;

        /* from now on the first byte's time */
        ngx_add_timer(&x->timer, ngx_http_maestro_h1_wait(x));
    }

    cl = c->send_chain(c, x->out, 0);

    if (cl == NGX_CHAIN_ERROR) {
        ngx_http_maestro_h1_fail(x, CURLE_SEND_ERROR);
        return;
    }

    x->out = cl;

    if (cl != NULL) {
        return;                     /* the write event brings us back */
    }

    x->sent = 1;

    if (c->read->ready && !x->paused) {
        ngx_http_maestro_h1_recv(x);
    }
}


#if (NGX_SSL)

/* per worker: the provider's last session, for the next handshake */
static void
ngx_http_maestro_h1_save_session(ngx_connection_t *c)
{
    ngx_ssl_session_t           *session;
    ngx_http_maestro_h1_t       *x = c->data;
    ngx_http_maestro_h1_peer_t  *peer = x->peer;

    session = ngx_ssl_get_session(c);
    if (session == NULL) {
        return;
    }

    if (peer->session != NULL) {
        ngx_ssl_free_session(peer->session);
    }

    peer->session = session;
}


static void
ngx_http_maestro_h1_tls_done(ngx_connection_t *c)
{
    long                         rc;
    ngx_http_maestro_h1_t       *x = c->data;
    ngx_http_maestro_h1_peer_t  *peer = x->peer;

    if (!c->ssl->handshaked) {
        ngx_log_error(NGX_LOG_ERR, x->log, 0,
                      "maestro: TLS handshake with provider %V failed",
                      &peer->name);
        ngx_http_maestro_h1_end(x, CURLE_SSL_CONNECT_ERROR);
        return;
    }

    rc = SSL_get_verify_result(c->ssl->connection);

    if (rc != X509_V_OK) {
        ngx_log_error(NGX_LOG_ERR, x->log, 0,
                      "maestro: provider %V: certificate verify error: "
                      "(%l:%s)", &peer->name, rc,
                      X509_verify_cert_error_string(rc));
        ngx_http_maestro_h1_end(x, CURLE_PEER_FAILED_VERIFICATION);
        return;
    }

    if (ngx_ssl_check_host(c, &peer->sni) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, x->log, 0,
                      "maestro: provider %V: certificate does not match "
                      "\"%V\"", &peer->name, &peer->sni);
        ngx_http_maestro_h1_end(x, CURLE_PEER_FAILED_VERIFICATION);
        return;
    }

    c->read->handler = ngx_http_maestro_h1_read_handler;
    c->write->handler = ngx_http_maestro_h1_write_handler;
    c->sendfile = 0;

    x->connecting = 0;
    ngx_add_timer(&x->timer, ngx_http_maestro_h1_wait(x));

    ngx_http_maestro_h1_send(x);
}


static void
ngx_http_maestro_h1_tls(ngx_http_maestro_h1_t *x)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c = x->c;
    ngx_http_maestro_h1_peer_t  *peer = x->peer;

    /* the TLS state and its buffer live in the connection's pool */
    c->pool = ngx_create_pool(1024, ngx_cycle->log);

    if (c->pool == NULL
        || ngx_ssl_create_connection(peer->ssl, c,
                                     NGX_SSL_BUFFER|NGX_SSL_CLIENT)
           != NGX_OK)
    {
        ngx_http_maestro_h1_end(x, CURLE_SSL_CONNECT_ERROR);
        return;
    }

    /* SNI is for names, not addresses (RFC 6066, section 3) */
    if (ngx_inet_addr(peer->sni.data, peer->sni.len) == INADDR_NONE
        && ngx_strlchr(peer->sni.data, peer->sni.data + peer->sni.len, ':')
           == NULL
        && SSL_set_tlsext_host_name(c->ssl->connection,
                                    (char *) peer->sni.data)
           == 0)
    {
        ngx_ssl_error(NGX_LOG_ERR, x->log, 0,
                      "SSL_set_tlsext_host_name(\"%V\") failed",
                      &peer->sni);
        ngx_http_maestro_h1_end(x, CURLE_SSL_CONNECT_ERROR);
        return;
    }

    if (peer->session != NULL
        && ngx_ssl_set_session(c, peer->session) != NGX_OK)
    {
        ngx_http_maestro_h1_end(x, CURLE_SSL_CONNECT_ERROR);
        return;
    }

    c->ssl->save_session = ngx_http_maestro_h1_save_session;

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        c->ssl->handler = ngx_http_maestro_h1_tls_done;
        return;
    }

    ngx_http_maestro_h1_tls_done(c);
}

#endif


static void
ngx_http_maestro_h1_field(void *arg, const char *line, size_t n)
{
    ngx_http_maestro_h1_t  *x = arg;

    (void) x->header((char *) line, 1, n, x->data);
}


/*
 * The bytes in buf[pos..last): the head, then body to write(). NGX_OK:
 * more are needed; NGX_DONE: the transfer ended (x may be gone);
 * NGX_AGAIN: paused.
 */
static ngx_int_t
ngx_http_maestro_h1_parse(ngx_http_maestro_h1_t *x)
{
    size_t        len;
    ssize_t       used;
    const char   *data;

    while (x->resp.state != MST_HTTP1_DONE) {

        if (x->paused) {
            return NGX_AGAIN;
        }

        if (x->resp.state == MST_HTTP1_HEAD) {
            used = mst_http1_head(&x->resp, (char *) x->buf + x->pos,
                                  x->last - x->pos,
                                  ngx_http_maestro_h1_field, x);
            if (used > 0) {
                x->status = x->resp.status;
            }

        } else {
            used = mst_http1_body(&x->resp, (char *) x->buf + x->pos,
                                  x->last - x->pos, &data, &len);

            if (used > 0 && len > 0
                && x->write((char *) data, 1, len, x->data) != len)
            {
                ngx_http_maestro_h1_end(x, CURLE_WRITE_ERROR);
                return NGX_DONE;
            }
        }

        if (used == MST_HTTP1_ERROR) {
            ngx_log_error(NGX_LOG_ERR, x->log, 0,
                          "maestro: provider %V sent %s", &x->peer->name,
                          x->resp.error);
            ngx_http_maestro_h1_end(x, CURLE_WEIRD_SERVER_REPLY);
            return NGX_DONE;
        }

        if (used == 0) {
            return NGX_OK;
        }

        x->pos += (size_t) used;
    }

    ngx_http_maestro_h1_end(x, CURLE_OK);

    return NGX_DONE;
}


static void
ngx_http_maestro_h1_recv(ngx_http_maestro_h1_t *x)
{
    ssize_t            n;
    ngx_int_t          rc;
    ngx_connection_t  *c = x->c;

    for ( ;; ) {
        if (x->pos < x->last || x->resp.state == MST_HTTP1_DONE) {
            rc = ngx_http_maestro_h1_parse(x);
            if (rc != NGX_OK) {
                return;             /* ended, or paused */
            }
        }

        /* what was not used moves to the front */
        if (x->pos > 0) {
            ngx_memmove(x->buf, x->buf + x->pos, x->last - x->pos);
            x->last -= x->pos;
            x->pos = 0;
        }

        if (x->last == NGX_HTTP_MAESTRO_H1_BUF) {
            ngx_log_error(NGX_LOG_ERR, x->log, 0,
                          "maestro: provider %V sent a head or chunk line "
                          "over %d bytes", &x->peer->name,
                          NGX_HTTP_MAESTRO_H1_BUF);
            ngx_http_maestro_h1_end(x, CURLE_WEIRD_SERVER_REPLY);
            return;
        }

        n = c->recv(c, x->buf + x->last, NGX_HTTP_MAESTRO_H1_BUF - x->last);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_http_maestro_h1_end(x, CURLE_RECV_ERROR);
            }
            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_maestro_h1_fail(x, CURLE_RECV_ERROR);
            return;
        }

        if (n == 0) {
            if (!x->got) {
                ngx_http_maestro_h1_fail(x, CURLE_GOT_NOTHING);
                return;
            }

            if (mst_http1_eof(&x->resp)) {
                x->resp.close = 1;
                ngx_http_maestro_h1_end(x, CURLE_OK);
                return;
            }

            ngx_http_maestro_h1_end(x, CURLE_PARTIAL_FILE);
            return;
        }

        x->got = 1;
        x->last += (size_t) n;

        /* bytes came: the idle time starts again */
        ngx_add_timer(&x->timer, ngx_http_maestro_h1_wait(x));
    }
}


/* ---- the caller's ----------------------------------------------------- */

ngx_int_t
ngx_http_maestro_h1_start(ngx_http_maestro_h1_t *x, const char *kind,
    const ngx_str_t *fields, const ngx_str_t *body)
{
    u_char  *p;
    size_t   need;

    if (x->buf == NULL) {
        x->buf = ngx_alloc(NGX_HTTP_MAESTRO_H1_BUF, x->log);
        if (x->buf == NULL) {
            return NGX_ERROR;
        }
    }

    need = sizeof("POST  HTTP/1.1\r\nHost: \r\n"
                  "Content-Length: \r\n\r\n") - 1
           + x->peer->path.len + 1 + ngx_strlen(kind)
           + x->peer->host.len + fields->len + NGX_SIZE_T_LEN;

    if (need > x->head_cap) {
        ngx_free(x->head.data);
        x->head.data = ngx_alloc(need, x->log);
        if (x->head.data == NULL) {
            x->head_cap = 0;
            return NGX_ERROR;
        }
        x->head_cap = need;
    }

    if (body != NULL) {
        p = ngx_sprintf(x->head.data, "POST %V/%s HTTP/1.1\r\nHost: %V\r\n"
                        "%VContent-Length: %uz\r\n\r\n",
                        &x->peer->path, kind, &x->peer->host, fields,
                        body->len);
        x->body = *body;

    } else {
        /* a GET (the health checks' /models) */
        p = ngx_sprintf(x->head.data, "GET %V/%s HTTP/1.1\r\nHost: %V\r\n"
                        "%V\r\n", &x->peer->path, kind, &x->peer->host,
                        fields);
        ngx_str_null(&x->body);
    }

    x->head.len = p - x->head.data;

    x->timer.handler = ngx_http_maestro_h1_timeout;
    x->timer.data = x;
    x->timer.log = x->log;
    x->later.handler = ngx_http_maestro_h1_later;
    x->later.data = x;
    x->later.log = x->log;

    x->deadline = ngx_current_msec + x->timeout;
    x->status = 0;
    x->paused = 0;
    x->fresh = 0;
    x->active = 1;

    ngx_http_maestro_h1_connect(x);

    return NGX_OK;
}


void
ngx_http_maestro_h1_stop(ngx_http_maestro_h1_t *x)
{
    if (!x->active) {
        return;
    }

    x->active = 0;

    if (x->timer.timer_set) {
        ngx_del_timer(&x->timer);
    }
    if (x->later.posted) {
        ngx_delete_posted_event(&x->later);
    }
    if (x->c != NULL) {
        ngx_http_maestro_h1_close(x->c);
        x->c = NULL;
    }
}


void
ngx_http_maestro_h1_pause(ngx_http_maestro_h1_t *x, ngx_uint_t on)
{
    if (on) {
        x->paused = 1;
        return;
    }

    if (!x->paused) {
        return;
    }

    x->paused = 0;

    /* the bytes kept and the socket's, on the next turn of the loop */
    if (x->active && x->c != NULL && !x->later.posted) {
        ngx_post_event(&x->later, &ngx_posted_events);
    }
}


void
ngx_http_maestro_h1_free(ngx_http_maestro_h1_t *x)
{
    ngx_http_maestro_h1_stop(x);

    ngx_free(x->buf);
    ngx_free(x->head.data);
    x->buf = NULL;
    x->head.data = NULL;
    x->head_cap = 0;
}
