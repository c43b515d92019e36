/*
 * Copyright (C) Maestro authors
 */

/*
 * Active health checks of the LLM providers (maestro_llm_health_check):
 * every interval, worker 0 asks each provider for GET <base>/models on
 * its event loop, through the same clients as the engine's calls (our
 * HTTP/1.1 client, or libcurl's multi interface), so a dead provider that
 * takes the whole timeout costs a socket, never a thread. What the
 * outcome does is core's (mst_gateway_health()): the verdict goes into
 * the breakers in shared memory, so every worker acts on it; a failed
 * check opens the breaker, a passed one lets the next call probe an open
 * breaker at once. One worker is enough for that; worker 0 is restarted
 * with the same number if it dies. A round still waiting for a slow
 * provider skips the next tick.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_maestro_module.h"
#include "ngx_http_maestro_health.h"
#include "ngx_http_maestro_engine.h"


typedef struct {
    ngx_http_maestro_main_conf_t  *mmcf;
    size_t                         member;
    ngx_http_maestro_curl_xfer_t   xfer;    /* libcurl, or */
    ngx_http_maestro_h1_t          h1;      /* our client */
    unsigned                       native:1;
    unsigned                       active:1;
} ngx_http_maestro_health_probe_t;


static void ngx_http_maestro_health_timer(ngx_event_t *ev);
static void ngx_http_maestro_health_done(void *data, int result);


static ngx_http_maestro_health_probe_t  ngx_http_maestro_health_probes[
                                            MST_GATEWAY_MAX];
static ngx_uint_t                       ngx_http_maestro_health_out;


void
ngx_http_maestro_health_init_worker(ngx_cycle_t *cycle,
    ngx_http_maestro_main_conf_t *mmcf)
{
    if (mmcf->health_interval == 0 || ngx_worker != 0
        || !mst_gateway_online(mmcf->gw))
    {
        return;
    }

    mmcf->health_ev.handler = ngx_http_maestro_health_timer;
    mmcf->health_ev.data = mmcf;
    mmcf->health_ev.log = cycle->log;
    mmcf->health_ev.cancelable = 1;

    ngx_add_timer(&mmcf->health_ev, mmcf->health_interval);
}


/* the body of a probe is not needed: counted away */
static size_t
ngx_http_maestro_health_discard(char *buf, size_t size, size_t n, void *arg)
{
    return size * n;
}


static ngx_int_t
ngx_http_maestro_health_start(ngx_http_maestro_health_probe_t *hp)
{
    CURL                              *easy;
    char                               url[1024];
    ngx_str_t                         *fields;
    struct curl_slist                 *headers;
    const mst_llm_provider_t          *p;
    ngx_http_maestro_provider_conf_t  *pc;

    p = mst_gateway_provider(hp->mmcf->gw, hp->member);
    pc = hp->mmcf->providers.elts;

    hp->native = pc[hp->member].peer != NULL;

    if (hp->native) {
        fields = ngx_http_maestro_engine_fields(hp->member, 0, p);
        if (fields == NULL) {
            return NGX_ERROR;
        }

        hp->h1.peer = pc[hp->member].peer;
        hp->h1.header = ngx_http_maestro_health_discard;
        hp->h1.write = ngx_http_maestro_health_discard;
        hp->h1.done = ngx_http_maestro_health_done;
        hp->h1.data = hp;
        hp->h1.log = hp->mmcf->health_ev.log;
        hp->h1.connect_timeout = hp->mmcf->health_timeout;
        hp->h1.timeout = hp->mmcf->health_timeout;

        return ngx_http_maestro_h1_start(&hp->h1, "models", fields, NULL);
    }

    headers = ngx_http_maestro_engine_headers(hp->member, 0, p);
    if (headers == NULL) {
        return NGX_ERROR;
    }

    if (hp->xfer.easy == NULL) {
        hp->xfer.easy = ngx_http_maestro_curl_easy();
        if (hp->xfer.easy == NULL) {
            return NGX_ERROR;
        }
    }

    easy = hp->xfer.easy;
    curl_easy_reset(easy);

    hp->xfer.done = ngx_http_maestro_health_done;
    hp->xfer.data = hp;

    snprintf(url, sizeof(url), "%s/models", p->base_url);

    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "maestro-health-check");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                     ngx_http_maestro_health_discard);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) hp->mmcf->health_timeout);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     (long) hp->mmcf->health_timeout);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");

    if (p->ca_file != NULL) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, p->ca_file);
    }

    return ngx_http_maestro_curl_start(&hp->xfer);
}


/* runs in the event loop: one probe's outcome */
static void
ngx_http_maestro_health_done(void *data, int result)
{
    ngx_http_maestro_health_probe_t  *hp = data;

    int                        ok;
    long                       status;
    char                       err[384];
    json_t                    *changes, *c;
    ngx_log_t                 *log;
    const mst_llm_provider_t  *p;

    hp->active = 0;
    ngx_http_maestro_health_out--;
    hp->mmcf->health_busy = ngx_http_maestro_health_out > 0;

    log = hp->mmcf->health_ev.log;
    p = mst_gateway_provider(hp->mmcf->gw, hp->member);

    status = 0;

    if (hp->native) {
        status = hp->h1.status;

    } else {
        (void) curl_easy_getinfo(hp->xfer.easy, CURLINFO_RESPONSE_CODE,
                                 &status);
    }

    ok = result == CURLE_OK && status >= 200 && status <= 299;
    err[0] = '\0';

    if (result != CURLE_OK) {
        ngx_snprintf((u_char *) err, sizeof(err) - 1, "GET %s/models: %s%Z",
                     p->base_url, curl_easy_strerror(result));

    } else if (!ok) {
        ngx_snprintf((u_char *) err, sizeof(err) - 1,
                     "GET %s/models: HTTP %l%Z", p->base_url, status);
    }

    changes = json_array();

    if (mst_gateway_health(hp->mmcf->gw, hp->member, ok, err, changes) == 0
        || changes == NULL)
    {
        json_decref(changes);
        return;
    }

    c = json_array_get(changes, 0);

    if (ok) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "maestro: provider \"%s\" passed its health check",
                      json_string_value(json_object_get(c, "provider")));

    } else {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "maestro: provider \"%s\" failed its health check, "
                      "its breaker is open: %s",
                      json_string_value(json_object_get(c, "provider")),
                      json_string_value(json_object_get(c, "error")));
    }

    json_decref(changes);
}


/* runs in the event loop: a round of probes */
static void
ngx_http_maestro_health_timer(ngx_event_t *ev)
{
    ngx_http_maestro_main_conf_t  *mmcf = ev->data;

    size_t                            i, n;
    ngx_http_maestro_health_probe_t  *hp;

    if (ngx_terminate || ngx_exiting) {
        return;
    }

    ngx_add_timer(ev, mmcf->health_interval);

    if (mmcf->health_busy) {
        /* the last round still waits for a slow provider */
        return;
    }

    n = mst_gateway_size(mmcf->gw);

    for (i = 0; i < n; i++) {
        hp = &ngx_http_maestro_health_probes[i];
        hp->mmcf = mmcf;
        hp->member = i;

        if (ngx_http_maestro_health_start(hp) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "maestro: cannot start the health check of "
                          "provider \"%s\"",
                          mst_gateway_provider(mmcf->gw, i)->name);
            continue;
        }

        hp->active = 1;
        ngx_http_maestro_health_out++;
    }

    mmcf->health_busy = ngx_http_maestro_health_out > 0;
}
