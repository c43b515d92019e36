/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The OpenAI chat-completions client (see mst_llm.h). mst_llm_chat() runs
 * on pool threads and blocks: one libcurl easy handle per attempt, nothing
 * shared between calls but the provider configuration, immutable after
 * mst_llm_create(). No signals (CURLOPT_NOSIGNAL).
 *
 * One call:
 *   1. copy the request; set "model" (provider default when absent),
 *      "stream" and, when streaming, stream_options.include_usage;
 *   2. attempts: POST {base_url}/chat/completions. The write callback
 *      decides at the first body byte what the body is: an error body
 *      (status not 2xx; kept for an excerpt), a JSON body (collected),
 *      an SSE stream (parsed line by line as it arrives: each
 *      choices[0].delta.content goes to on_chunk and is appended to the
 *      answer, "usage" is taken from the chunk that has it, "data: [DONE]"
 *      ends it), or anything else (aborted: wrong content type);
 *   3. retries: connect errors, connections dropped before an answer,
 *      timeouts before the first body byte, 429 and 5xx. The wait is
 *      Retry-After when the provider sent one (failing at once when it
 *      would pass the deadline), else a full-jitter exponential backoff
 *      random(0, backoff_ms * 2^attempt) capped at 30 s and at the
 *      deadline. Never after a chunk went to on_chunk: the caller has part
 *      of an answer, so that is "stream broken after N bytes".
 *
 * Deadline and cancellation: CURLOPT_TIMEOUT_MS is the smaller of the
 * provider timeout and the time left; the transfer-info callback (called
 * at least about once a second, and as data flows) aborts the transfer
 * when call->cancelled says so or the deadline passed; backoff sleeps in
 * slices of 50 ms and checks both.
 *
 * Errors name the provider and the cause (curl error, HTTP status and an
 * excerpt of the provider's message). The API key is only ever put in a
 * request header, and is masked out of every error string as well, in
 * case a provider echoes it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <pthread.h>
#include <sys/random.h>
#include <curl/curl.h>

#include "mst_llm.h"
#include "mst_offline.h"


#define MST_LLM_BACKOFF_MAX_MS     30000
#define MST_LLM_RETRY_AFTER_MAX_MS 60000
#define MST_LLM_SLEEP_SLICE_MS     50
#define MST_LLM_BODY_MAX           (16 * 1024 * 1024)
#define MST_LLM_ERROR_BODY_MAX     8192
#define MST_LLM_LINE_MAX           (4 * 1024 * 1024)
#define MST_LLM_EXCERPT            160
#define MST_LLM_DEFAULT_CONNECT    10000
#define MST_LLM_DEFAULT_TIMEOUT    120000
#define MST_LLM_DEFAULT_BACKOFF    500

/* what the write callback decided the body is */
#define MST_LLM_BODY_UNKNOWN       0
#define MST_LLM_BODY_JSON          1
#define MST_LLM_BODY_SSE           2
#define MST_LLM_BODY_ERROR         3

/* why we aborted a transfer */
#define MST_LLM_ABORT_NONE         0
#define MST_LLM_ABORT_CANCELLED    1
#define MST_LLM_ABORT_DEADLINE     2
#define MST_LLM_ABORT_UPSTREAM     3   /* reason in xfer->abort_msg */
#define MST_LLM_ABORT_STOPPED      4   /* on_chunk asked to stop */
#define MST_LLM_ABORT_NOMEM        5


struct mst_llm_s {
    int                  online;
    mst_llm_provider_t   p;          /* strings point to our copies */
    char                *url;        /* base_url + "/chat/completions" */
    char                *models;     /* base_url + "/models" */
};


typedef struct {
    char                *data;
    size_t               len;
    size_t               cap;
} mst_llm_buf_t;


typedef struct {
    mst_llm_t             *llm;
    const mst_llm_call_t  *call;
    CURL                  *curl;

    int                    mode;          /* MST_LLM_BODY_* */
    int                    abort;         /* MST_LLM_ABORT_* */
    char                   abort_msg[MST_ERRLEN];

    size_t                 body_bytes;    /* body bytes received */
    size_t                 delivered;     /* bytes given to on_chunk */
    long                   retry_after_ms;  /* -1: none */

    mst_llm_buf_t          body;          /* JSON or error body */
    mst_llm_buf_t          line;          /* SSE: the current line */
    mst_llm_buf_t          data;          /* SSE: the current event data */
    mst_llm_buf_t          content;       /* SSE: the assembled answer */
    int                    has_data;
    int                    event_error;   /* SSE: "event: error" */

    /* SSE: what the chunks said */
    json_t                *usage;
    char                   id[128];
    char                   model[128];
    char                   finish[32];
    json_int_t             created;
    int                    done;
} mst_llm_xfer_t;


static int mst_llm_online_chat(mst_llm_t *llm, json_t *request,
    const mst_llm_call_t *call, json_t **response, char *err, size_t errlen);
static int mst_llm_offline_chat(json_t *request, const mst_llm_call_t *call,
    json_t **response, char *err, size_t errlen);
static int mst_llm_attempt(mst_llm_t *llm, json_t *request,
    const mst_llm_call_t *call, const char *payload, int *retry,
    long *retry_after_ms, json_t **response, char *err, size_t errlen);
static int mst_llm_finish_json(mst_llm_xfer_t *x, json_t *request,
    json_t **response, char *err, size_t errlen);
static int mst_llm_finish_sse(mst_llm_xfer_t *x, json_t *request,
    json_t **response, char *err, size_t errlen);
static int mst_llm_backoff(mst_llm_t *llm, const mst_llm_call_t *call,
    int attempt, long retry_after_ms, char *err, size_t errlen);
static size_t mst_llm_write(char *ptr, size_t size, size_t nmemb,
    void *arg);
static size_t mst_llm_header(char *ptr, size_t size, size_t nmemb,
    void *arg);
static int mst_llm_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow);
static int mst_llm_check(mst_llm_xfer_t *x);
static void mst_llm_body_start(mst_llm_xfer_t *x);
static int mst_llm_sse_feed(mst_llm_xfer_t *x, const char *p, size_t n);
static int mst_llm_sse_line(mst_llm_xfer_t *x, const char *p, size_t n);
static int mst_llm_sse_event(mst_llm_xfer_t *x);
static int mst_llm_deliver(mst_llm_xfer_t *x, const char *s, size_t len);
static void mst_llm_excerpt(const char *body, size_t len, char *out,
    size_t outlen);
static json_t *mst_llm_usage(json_t *request, const char *answer,
    size_t len);
static size_t mst_llm_content_len(json_t *content);
static void mst_llm_fill(json_t *resp, json_t *request);
static void mst_llm_redact(const mst_llm_t *llm, char *err, size_t errlen);
static int mst_llm_sleep(const mst_llm_call_t *call, long ms);
static int mst_llm_cancelled(const mst_llm_call_t *call);
static int mst_llm_buf_add(mst_llm_buf_t *b, const char *s, size_t n,
    size_t max);
static void mst_llm_buf_free(mst_llm_buf_t *b);
static char *mst_llm_strdup(const char *s);
static void mst_llm_copy(char *dst, size_t size, json_t *v);
static uint64_t mst_llm_random(void);
static void mst_llm_init_once(void);


static pthread_once_t  mst_llm_once = PTHREAD_ONCE_INIT;
static CURLcode        mst_llm_init_rc = CURLE_FAILED_INIT;


/* call once per process before threads start */

int
mst_llm_global_init(void)
{
    pthread_once(&mst_llm_once, mst_llm_init_once);
    return mst_llm_init_rc == CURLE_OK ? MST_OK : MST_ERROR;
}


static void
mst_llm_init_once(void)
{
    mst_llm_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}


mst_llm_t *
mst_llm_create(const mst_llm_provider_t *provider, char *err, size_t errlen)
{
    size_t      len;
    mst_llm_t  *llm;

    llm = calloc(1, sizeof(mst_llm_t));
    if (llm == NULL) {
        mst_err(err, errlen, MST_ENOMEM, "out of memory");
        return NULL;
    }

    if (provider == NULL) {
        return llm;
    }

    if (provider->base_url == NULL
        || (strncmp(provider->base_url, "http://", 7) != 0
            && strncmp(provider->base_url, "https://", 8) != 0))
    {
        mst_err(err, errlen, MST_EINVAL, "provider \"%s\": base_url must "
                "start with http:// or https://",
                provider->name ? provider->name : "default");
        free(llm);
        return NULL;
    }

    if (mst_llm_global_init() != MST_OK) {
        mst_err(err, errlen, MST_ERROR, "curl_global_init() failed");
        free(llm);
        return NULL;
    }

    llm->online = 1;
    llm->p = *provider;
    llm->p.name = mst_llm_strdup(provider->name ? provider->name
                                                : "default");
    llm->p.base_url = mst_llm_strdup(provider->base_url);
    llm->p.api_key = (provider->api_key && provider->api_key[0])
                     ? mst_llm_strdup(provider->api_key) : NULL;
    llm->p.model = (provider->model && provider->model[0])
                   ? mst_llm_strdup(provider->model) : NULL;
    llm->p.ca_file = (provider->ca_file && provider->ca_file[0])
                     ? mst_llm_strdup(provider->ca_file) : NULL;

    len = strlen(provider->base_url);
    while (len > 0 && provider->base_url[len - 1] == '/') {
        len--;
    }

    llm->url = malloc(len + sizeof("/chat/completions"));
    llm->models = malloc(len + sizeof("/models"));

    if (llm->p.name == NULL || llm->p.base_url == NULL || llm->url == NULL
        || llm->models == NULL
        || (provider->api_key && provider->api_key[0]
            && llm->p.api_key == NULL)
        || (provider->model && provider->model[0] && llm->p.model == NULL)
        || (provider->ca_file && provider->ca_file[0]
            && llm->p.ca_file == NULL))
    {
        mst_llm_free(llm);
        mst_err(err, errlen, MST_ENOMEM, "out of memory");
        return NULL;
    }

    memcpy(llm->url, provider->base_url, len);
    memcpy(llm->url + len, "/chat/completions",
           sizeof("/chat/completions"));
    memcpy(llm->models, provider->base_url, len);
    memcpy(llm->models + len, "/models", sizeof("/models"));

    if (llm->p.connect_timeout_ms <= 0) {
        llm->p.connect_timeout_ms = MST_LLM_DEFAULT_CONNECT;
    }

    if (llm->p.timeout_ms <= 0) {
        llm->p.timeout_ms = MST_LLM_DEFAULT_TIMEOUT;
    }

    if (llm->p.max_retries < 0) {
        llm->p.max_retries = 0;
    }

    if (llm->p.backoff_ms <= 0) {
        llm->p.backoff_ms = MST_LLM_DEFAULT_BACKOFF;
    }

    return llm;
}


void
mst_llm_free(mst_llm_t *llm)
{
    if (llm == NULL) {
        return;
    }

    if (llm->online) {
        free((char *) llm->p.name);
        free((char *) llm->p.base_url);
        free((char *) llm->p.model);
        free((char *) llm->p.ca_file);

        if (llm->p.api_key != NULL) {
            /* do not leave the key in freed memory */
            explicit_bzero((char *) llm->p.api_key, strlen(llm->p.api_key));
            free((char *) llm->p.api_key);
        }

        free(llm->url);
        free(llm->models);
    }

    free(llm);
}


/* the body of a probe is not needed: count it away */
static size_t
mst_llm_discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    return size * nmemb;
}


/*
 * Appends "Authorization: Bearer <key>" when the provider has a key; the
 * temporary copy of the key is wiped. MST_ENOMEM leaves *headers as is.
 */
static int
mst_llm_auth(mst_llm_t *llm, struct curl_slist **headers)
{
    char                *hdr;
    size_t               klen;
    struct curl_slist   *h;

    if (llm->p.api_key == NULL) {
        return MST_OK;
    }

    klen = strlen(llm->p.api_key);
    hdr = malloc(klen + sizeof("Authorization: Bearer "));
    if (hdr == NULL) {
        return MST_ENOMEM;
    }

    memcpy(hdr, "Authorization: Bearer ", sizeof("Authorization: Bearer ") - 1);
    memcpy(hdr + sizeof("Authorization: Bearer ") - 1, llm->p.api_key,
           klen + 1);

    h = curl_slist_append(*headers, hdr);

    explicit_bzero(hdr, klen + sizeof("Authorization: Bearer "));
    free(hdr);

    if (h == NULL) {
        return MST_ENOMEM;
    }

    *headers = h;

    return MST_OK;
}


int
mst_llm_probe(mst_llm_t *llm, long timeout_ms, char *err, size_t errlen)
{
    int                  rc;
    char                 ebuf[CURL_ERROR_SIZE];
    long                 status;
    CURL                *curl;
    CURLcode             cc;
    struct curl_slist   *headers;

    if (!llm->online) {
        return MST_OK;
    }

    curl = curl_easy_init();
    if (curl == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "curl_easy_init() failed");
    }

    headers = NULL;
    rc = MST_OK;

    if (mst_llm_auth(llm, &headers) != MST_OK) {
        rc = mst_err(err, errlen, MST_ENOMEM, "out of memory");
        goto done;
    }

    ebuf[0] = '\0';

    curl_easy_setopt(curl, CURLOPT_URL, llm->models);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (llm->p.ca_file != NULL) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, llm->p.ca_file);
    }
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "maestro-health-check");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     llm->p.connect_timeout_ms < timeout_ms
                     ? llm->p.connect_timeout_ms : timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, mst_llm_discard);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);

    cc = curl_easy_perform(curl);

    if (cc != CURLE_OK) {
        rc = mst_err(err, errlen, cc == CURLE_OPERATION_TIMEDOUT
                                  ? MST_ETIMEDOUT : MST_EUPSTREAM,
                     "provider \"%s\": GET %s: %s", llm->p.name,
                     llm->models, ebuf[0] ? ebuf : curl_easy_strerror(cc));
        goto done;
    }

    status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

    if (status < 200 || status > 299) {
        rc = mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": GET %s: "
                     "HTTP %ld", llm->p.name, llm->models, status);
    }

done:

    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);

    return rc;
}


int
mst_llm_online(const mst_llm_t *llm)
{
    return llm != NULL && llm->online;
}


long
mst_llm_estimate_tokens(const char *text, size_t len)
{
    return (long) ((len + 3) / 4);
}


/* runs on a pool thread */

int
mst_llm_chat(mst_llm_t *llm, json_t *request, const mst_llm_call_t *call,
    json_t **response, char *err, size_t errlen)
{
    json_t  *messages;
    int      rc;

    if (response != NULL) {
        *response = NULL;
    }

    if (llm == NULL || response == NULL || !json_is_object(request)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "llm chat: no client, request or response");
    }

    messages = json_object_get(request, "messages");

    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        return mst_err(err, errlen, MST_EINVAL,
                       "llm chat: \"messages\" must be a non-empty array");
    }

    if (call != NULL && call->deadline != 0
        && mst_mono_ms() >= call->deadline)
    {
        return mst_err(err, errlen, MST_ETIMEDOUT,
                       "llm chat: the deadline passed before the call");
    }

    if (!llm->online) {
        return mst_llm_offline_chat(request, call, response, err, errlen);
    }

    rc = mst_llm_online_chat(llm, request, call, response, err, errlen);

    if (rc != MST_OK) {
        mst_llm_redact(llm, err, errlen);
    }

    return rc;
}


static int
mst_llm_offline_chat(json_t *request, const mst_llm_call_t *call,
    json_t **response, char *err, size_t errlen)
{
    char        *answer, id[MST_ID_LEN + 1], cid[64];
    size_t       len, i, start;
    json_t      *resp, *usage;

    answer = mst_offline_answer(request);
    if (answer == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "offline answer: out of "
                       "memory");
    }

    len = strlen(answer);

    if (call != NULL && call->on_chunk != NULL) {
        /* word-sized pieces: a word and the spaces after it */
        i = 0;

        while (i < len) {
            start = i;

            while (i < len && answer[i] != ' ' && answer[i] != '\n') {
                i++;
            }

            while (i < len && (answer[i] == ' ' || answer[i] == '\n')) {
                i++;
            }

            if (mst_llm_cancelled(call)) {
                free(answer);
                return mst_err(err, errlen, MST_ECANCELLED,
                               "offline answer: cancelled");
            }

            if (call->on_chunk(answer + start, i - start, call->chunk_arg)
                != 0)
            {
                free(answer);
                return mst_err(err, errlen, MST_ECANCELLED,
                               "offline answer: stopped by the chunk "
                               "callback");
            }
        }
    }

    mst_id_new(id);
    snprintf(cid, sizeof(cid), "chatcmpl-offline-%s", id + 3);

    usage = mst_llm_usage(request, answer, len);

    resp = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%}, s:s}],"
                     " s:o*}",
                     "id", cid, "object", "chat.completion",
                     "created", (json_int_t) (mst_now_ms() / 1000),
                     "model", MST_OFFLINE_MODEL,
                     "choices", "index", 0, "message", "role", "assistant",
                     "content", answer, len, "finish_reason", "stop",
                     "usage", usage);
    free(answer);

    if (resp == NULL || usage == NULL) {
        json_decref(resp);
        return mst_err(err, errlen, MST_ENOMEM, "offline answer: cannot "
                       "build the response");
    }

    *response = resp;
    return MST_OK;
}


static int
mst_llm_online_chat(mst_llm_t *llm, json_t *request,
    const mst_llm_call_t *call, json_t **response, char *err, size_t errlen)
{
    char     *payload, last[MST_ERRLEN];
    json_t   *body, *model, *so;
    long      retry_after_ms;
    int       rc, attempt, retry, streaming;

    streaming = call != NULL && call->on_chunk != NULL;

    body = json_deep_copy(request);
    if (body == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    model = json_object_get(body, "model");

    if (!json_is_string(model) || json_string_length(model) == 0) {
        if (llm->p.model == NULL) {
            json_decref(body);
            return mst_err(err, errlen, MST_EINVAL, "provider \"%s\": the "
                           "request has no \"model\" and the provider no "
                           "default model", llm->p.name);
        }

        json_object_set_new(body, "model", json_string(llm->p.model));
    }

    json_object_set_new(body, "stream", json_boolean(streaming));

    if (streaming) {
        so = json_object_get(body, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(body, "stream_options", so);
        }
        json_object_set_new(so, "include_usage", json_true());

    } else {
        json_object_del(body, "stream_options");
    }

    payload = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (payload == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    rc = MST_ERROR;
    last[0] = '\0';

    for (attempt = 0; /* void */; attempt++) {
        if (mst_llm_cancelled(call)) {
            rc = mst_err(err, errlen, MST_ECANCELLED, "provider \"%s\": "
                         "cancelled after %d attempt(s)%s%s", llm->p.name,
                         attempt, last[0] ? ", last: " : "", last);
            break;
        }

        if (call != NULL && call->deadline != 0
            && mst_mono_ms() >= call->deadline)
        {
            rc = mst_err(err, errlen, MST_ETIMEDOUT, "provider \"%s\": "
                         "deadline passed after %d attempt(s)%s%s",
                         llm->p.name, attempt, last[0] ? ", last: " : "",
                         last);
            break;
        }

        retry = 0;
        retry_after_ms = -1;

        rc = mst_llm_attempt(llm, request, call, payload, &retry,
                             &retry_after_ms, response, err, errlen);

        if (rc == MST_OK || !retry) {
            break;
        }

        if (attempt >= llm->p.max_retries) {
            if (attempt > 0) {
                snprintf(last, sizeof(last), "%s", err);
                mst_err(err, errlen, rc, "%s (%d attempts)", last,
                        attempt + 1);
            }
            break;
        }

        snprintf(last, sizeof(last), "%s", err);

        rc = mst_llm_backoff(llm, call, attempt, retry_after_ms, err,
                             errlen);
        if (rc != MST_OK) {
            break;
        }
    }

    free(payload);
    return rc;
}


/*
 * One HTTP exchange. Sets *retry when trying again may succeed, and
 * *retry_after_ms when the provider said when.
 */

static int
mst_llm_attempt(mst_llm_t *llm, json_t *request, const mst_llm_call_t *call,
    const char *payload, int *retry, long *retry_after_ms,
    json_t **response, char *err, size_t errlen)
{
    char                 ebuf[CURL_ERROR_SIZE];
    char                 excerpt[MST_LLM_EXCERPT + 8];
    long                 status, timeout, left, connect;
    int                  rc, deadline_bound;
    CURL                *curl;
    CURLcode             cc;
    const char          *name;
    mst_llm_xfer_t       x;
    struct curl_slist   *headers, *h;

    name = llm->p.name;

    memset(&x, 0, sizeof(x));
    x.llm = llm;
    x.call = call;
    x.retry_after_ms = -1;

    timeout = llm->p.timeout_ms;
    connect = llm->p.connect_timeout_ms;
    deadline_bound = 0;

    if (call != NULL && call->deadline != 0) {
        left = (long) (call->deadline - mst_mono_ms());
        if (left <= 0) {
            return mst_err(err, errlen, MST_ETIMEDOUT, "provider \"%s\": "
                           "deadline passed", name);
        }

        if (left < timeout) {
            timeout = left;
            deadline_bound = 1;
        }
    }

    if (connect > timeout) {
        connect = timeout;
    }

    curl = curl_easy_init();
    if (curl == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "curl_easy_init() failed");
    }

    x.curl = curl;

    headers = NULL;
    rc = MST_OK;

    h = curl_slist_append(NULL, "Content-Type: application/json");
    headers = h;
    if (h != NULL) {
        h = curl_slist_append(headers, (call && call->on_chunk)
                              ? "Accept: text/event-stream"
                              : "Accept: application/json");
    }
    if (h != NULL) {
        h = curl_slist_append(headers, "Expect:");
    }

    if (h == NULL || mst_llm_auth(llm, &headers) != MST_OK) {
        rc = mst_err(err, errlen, MST_ENOMEM, "out of memory");
        goto done;
    }

    ebuf[0] = '\0';

    curl_easy_setopt(curl, CURLOPT_URL, llm->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (llm->p.ca_file != NULL) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, llm->p.ca_file);
    }
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(payload));
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "maestro");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, mst_llm_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, mst_llm_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, mst_llm_xferinfo);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);

    cc = curl_easy_perform(curl);

    status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

    if (x.mode == MST_LLM_BODY_UNKNOWN && cc == CURLE_OK) {
        /* an empty body: decide from the status and headers now */
        mst_llm_body_start(&x);
    }

    if (x.mode == MST_LLM_BODY_SSE && x.abort == MST_LLM_ABORT_NONE
        && cc == CURLE_OK)
    {
        /* the last line and event, if the stream did not end them */
        if (mst_llm_sse_feed(&x, "\n\n", 2) != 0) {
            cc = CURLE_WRITE_ERROR;
        }
    }

    /* our own aborts first: they explain the curl error */

    switch (x.abort) {

    case MST_LLM_ABORT_CANCELLED:
        rc = mst_err(err, errlen, MST_ECANCELLED, "provider \"%s\": "
                     "cancelled", name);
        goto done;

    case MST_LLM_ABORT_DEADLINE:
        rc = mst_err(err, errlen, MST_ETIMEDOUT, "provider \"%s\": "
                     "deadline passed after %zu bytes", name, x.body_bytes);
        goto done;

    case MST_LLM_ABORT_STOPPED:
        rc = mst_err(err, errlen, MST_ECANCELLED, "provider \"%s\": "
                     "stopped by the chunk callback", name);
        goto done;

    case MST_LLM_ABORT_NOMEM:
        rc = mst_err(err, errlen, MST_ENOMEM, "provider \"%s\": out of "
                     "memory", name);
        goto done;

    case MST_LLM_ABORT_UPSTREAM:
        rc = mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": %s", name,
                     x.abort_msg);
        goto done;
    }

    if (cc == CURLE_OPERATION_TIMEDOUT) {
        if (deadline_bound) {
            rc = mst_err(err, errlen, MST_ETIMEDOUT, "provider \"%s\": "
                         "deadline passed (%ld ms, %zu bytes received)",
                         name, timeout, x.body_bytes);
            goto done;
        }

        rc = mst_err(err, errlen, MST_ETIMEDOUT, "provider \"%s\": timed "
                     "out after %ld ms (%zu bytes received)", name, timeout,
                     x.body_bytes);
        *retry = (x.body_bytes == 0 && x.delivered == 0);
        goto done;
    }

    if (cc != CURLE_OK) {
        if (x.delivered > 0) {
            rc = mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": "
                         "stream broken after %zu bytes: %s", name,
                         x.delivered, ebuf[0] ? ebuf
                                              : curl_easy_strerror(cc));
            goto done;
        }

        switch (cc) {

        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
            /* nothing reached the caller: a new connection may do */
            *retry = 1;
            /* fall through */

        default:
            rc = mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": %s",
                         name, ebuf[0] ? ebuf : curl_easy_strerror(cc));
            goto done;
        }
    }

    if (status == 429 || status >= 500) {
        mst_llm_excerpt(x.body.data, x.body.len, excerpt, sizeof(excerpt));
        rc = mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": HTTP %ld"
                     "%s%s", name, status, excerpt[0] ? ": " : "", excerpt);
        *retry = 1;
        *retry_after_ms = x.retry_after_ms;
        goto done;
    }

    if (status < 200 || status > 299) {
        mst_llm_excerpt(x.body.data, x.body.len, excerpt, sizeof(excerpt));
        rc = mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": HTTP %ld"
                     "%s%s", name, status, excerpt[0] ? ": " : "", excerpt);
        goto done;
    }

    if (x.mode == MST_LLM_BODY_SSE) {
        rc = mst_llm_finish_sse(&x, request, response, err, errlen);

    } else {
        rc = mst_llm_finish_json(&x, request, response, err, errlen);
    }

done:

    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    mst_llm_buf_free(&x.body);
    mst_llm_buf_free(&x.line);
    mst_llm_buf_free(&x.data);
    mst_llm_buf_free(&x.content);
    json_decref(x.usage);

    return rc;
}


/* a complete non-streamed body: validate, complete, hand over */

static int
mst_llm_finish_json(mst_llm_xfer_t *x, json_t *request, json_t **response,
    char *err, size_t errlen)
{
    const char    *name, *why;
    json_t        *root, *obj, *choice, *msg, *content;
    json_error_t   jerr;

    name = x->llm->p.name;
    why = NULL;

    if (x->body.len == 0) {
        return mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": "
                       "malformed response: empty body", name);
    }

    root = json_loadb(x->body.data, x->body.len, 0, &jerr);
    if (root == NULL) {
        return mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": "
                       "malformed response: %s", name, jerr.text);
    }

    obj = json_object_get(root, "object");
    choice = json_array_get(json_object_get(root, "choices"), 0);
    msg = json_object_get(choice, "message");
    content = json_object_get(msg, "content");

    if (!json_is_object(root)) {
        why = "not a JSON object";

    } else if (obj != NULL && !(json_is_string(obj)
               && strcmp(json_string_value(obj), "chat.completion") == 0))
    {
        why = "not a chat.completion";

    } else if (!json_is_object(msg)) {
        why = "no choices[0].message";

    } else if (content == NULL
               ? json_object_get(msg, "tool_calls") == NULL
               : !(json_is_string(content) || json_is_null(content)))
    {
        why = "choices[0].message.content is not a string or null";
    }

    if (why != NULL) {
        json_decref(root);
        return mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": "
                       "malformed response: %s", name, why);
    }

    if (json_object_get(root, "usage") == NULL
        || !json_is_object(json_object_get(root, "usage")))
    {
        json_object_set_new(root, "usage",
            mst_llm_usage(request, json_string_value(content),
                          json_is_string(content)
                          ? json_string_length(content) : 0));
    }

    mst_llm_fill(root, request);

    /* a provider that ignored "stream": one chunk with everything */
    if (x->call != NULL && x->call->on_chunk != NULL
        && json_is_string(content) && json_string_length(content) > 0
        && x->call->on_chunk(json_string_value(content),
                             json_string_length(content),
                             x->call->chunk_arg) != 0)
    {
        json_decref(root);
        return mst_err(err, errlen, MST_ECANCELLED, "provider \"%s\": "
                       "stopped by the chunk callback", name);
    }

    *response = root;
    return MST_OK;
}


static int
mst_llm_finish_sse(mst_llm_xfer_t *x, json_t *request, json_t **response,
    char *err, size_t errlen)
{
    char        cid[64], id[MST_ID_LEN + 1];
    const char  *name;
    json_t      *resp, *usage;

    name = x->llm->p.name;

    if (!x->done && x->finish[0] == '\0') {
        if (x->delivered > 0) {
            return mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": "
                           "stream broken after %zu bytes: no [DONE]",
                           name, x->delivered);
        }

        return mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": "
                       "malformed response: the stream ended without "
                       "[DONE]", name);
    }

    mst_id_new(id);
    snprintf(cid, sizeof(cid), "chatcmpl-%s", id + 3);

    if (json_is_object(x->usage)) {
        usage = x->usage;
        x->usage = NULL;

    } else {
        usage = mst_llm_usage(request, x->content.data, x->content.len);
    }

    resp = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%}, s:s}],"
                     " s:o*}",
                     "id", x->id[0] ? x->id : cid,
                     "object", "chat.completion",
                     "created", x->created ? x->created
                                : (json_int_t) (mst_now_ms() / 1000),
                     "model", x->model,
                     "choices", "index", 0, "message", "role", "assistant",
                     "content", x->content.data ? x->content.data : "",
                     x->content.len,
                     "finish_reason", x->finish[0] ? x->finish : "stop",
                     "usage", usage);

    if (resp == NULL || usage == NULL) {
        json_decref(resp);
        return mst_err(err, errlen, MST_EUPSTREAM, "provider \"%s\": cannot "
                       "assemble the streamed answer", name);
    }

    mst_llm_fill(resp, request);

    *response = resp;
    return MST_OK;
}


/* sleep before the next attempt */

static int
mst_llm_backoff(mst_llm_t *llm, const mst_llm_call_t *call, int attempt,
    long retry_after_ms, char *err, size_t errlen)
{
    char      last[MST_ERRLEN];
    int64_t   left;
    uint64_t  cap;
    long      wait;

    snprintf(last, sizeof(last), "%s", err);

    left = -1;
    if (call != NULL && call->deadline != 0) {
        left = call->deadline - mst_mono_ms();
        if (left <= 0) {
            return mst_err(err, errlen, MST_ETIMEDOUT, "%s; deadline passed "
                           "after %d attempt(s)", last, attempt + 1);
        }
    }

    if (retry_after_ms >= 0) {
        if (left >= 0 && retry_after_ms > left) {
            return mst_err(err, errlen, MST_ETIMEDOUT, "%s; Retry-After "
                           "%ld s would pass the deadline", last,
                           (retry_after_ms + 999) / 1000);
        }

        if (retry_after_ms > MST_LLM_RETRY_AFTER_MAX_MS) {
            return mst_err(err, errlen, MST_EUPSTREAM, "%s; Retry-After "
                           "%ld s is too long", last,
                           retry_after_ms / 1000);
        }

        wait = retry_after_ms;

    } else {
        cap = (uint64_t) llm->p.backoff_ms;
        if (attempt < 20) {
            cap <<= attempt;
        } else {
            cap = MST_LLM_BACKOFF_MAX_MS;
        }

        if (cap > MST_LLM_BACKOFF_MAX_MS) {
            cap = MST_LLM_BACKOFF_MAX_MS;
        }

        wait = (long) (mst_llm_random() % (cap + 1));

        if (left >= 0 && wait > left) {
            wait = (long) left;
        }
    }

    if (mst_llm_sleep(call, wait) != 0) {
        return mst_err(err, errlen, MST_ECANCELLED, "%s; cancelled while "
                       "waiting to retry", last);
    }

    /* the error of the attempt stays until the next one */
    snprintf(err, errlen, "%s", last);

    return MST_OK;
}


/* runs inside curl_easy_perform() */

static size_t
mst_llm_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    size_t           n;
    mst_llm_xfer_t  *x;

    x = arg;
    n = size * nmemb;

    if (x->mode == MST_LLM_BODY_UNKNOWN) {
        mst_llm_body_start(x);
    }

    x->body_bytes += n;

    if (x->abort != MST_LLM_ABORT_NONE || mst_llm_check(x) != 0) {
        return 0;
    }

    switch (x->mode) {

    case MST_LLM_BODY_JSON:
        if (mst_llm_buf_add(&x->body, ptr, n, MST_LLM_BODY_MAX) != 0) {
            x->abort = MST_LLM_ABORT_UPSTREAM;
            snprintf(x->abort_msg, sizeof(x->abort_msg),
                     "response larger than %d bytes", MST_LLM_BODY_MAX);
            return 0;
        }
        break;

    case MST_LLM_BODY_ERROR:
        /* an excerpt is enough */
        if (x->body.len < MST_LLM_ERROR_BODY_MAX) {
            if (n > MST_LLM_ERROR_BODY_MAX - x->body.len) {
                n = MST_LLM_ERROR_BODY_MAX - x->body.len;
            }
            (void) mst_llm_buf_add(&x->body, ptr, n, MST_LLM_ERROR_BODY_MAX);
        }
        break;

    case MST_LLM_BODY_SSE:
        if (mst_llm_sse_feed(x, ptr, n) != 0) {
            return 0;
        }
        break;
    }

    return size * nmemb;
}


/* at the first body byte: what is this body? */

static void
mst_llm_body_start(mst_llm_xfer_t *x)
{
    long   status;
    char  *ct;

    status = 0;
    ct = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->curl, CURLINFO_CONTENT_TYPE, &ct);

    if (status < 200 || status > 299) {
        x->mode = MST_LLM_BODY_ERROR;
        return;
    }

    if (ct != NULL && strncasecmp(ct, "text/event-stream", 17) == 0) {
        x->mode = MST_LLM_BODY_SSE;
        return;
    }

    if (ct != NULL && (strncasecmp(ct, "application/json", 16) == 0
                       || strcasestr(ct, "+json") != NULL))
    {
        x->mode = MST_LLM_BODY_JSON;
        return;
    }

    x->mode = MST_LLM_BODY_ERROR;
    x->abort = MST_LLM_ABORT_UPSTREAM;
    snprintf(x->abort_msg, sizeof(x->abort_msg),
             "unexpected content type \"%.64s\" (HTTP %ld)",
             ct ? ct : "none", status);
}


/* runs inside curl_easy_perform(): Retry-After */

static size_t
mst_llm_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
    char            *p, *end, value[128];
    size_t           n, len;
    time_t           t;
    long             secs;
    mst_llm_xfer_t  *x;

    x = arg;
    n = size * nmemb;

    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx): forget the previous headers */
        x->retry_after_ms = -1;
        return n;
    }

    if (n < 12 || strncasecmp(ptr, "retry-after:", 12) != 0) {
        return n;
    }

    p = ptr + 12;
    end = ptr + n;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    {
        end--;
    }

    len = end - p;
    if (len == 0 || len >= sizeof(value)) {
        return n;
    }

    memcpy(value, p, len);
    value[len] = '\0';

    if (value[0] >= '0' && value[0] <= '9') {
        secs = strtol(value, &p, 10);
        if (*p == '\0' && secs >= 0 && secs < 86400 * 365) {
            x->retry_after_ms = secs * 1000;
        }
        return n;
    }

    t = curl_getdate(value, NULL);
    if (t != -1) {
        t -= time(NULL);
        x->retry_after_ms = t > 0 ? (long) t * 1000 : 0;
    }

    return n;
}


/* runs inside curl_easy_perform(): non-zero aborts the transfer */

static int
mst_llm_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
    return mst_llm_check(arg);
}


static int
mst_llm_check(mst_llm_xfer_t *x)
{
    if (x->abort != MST_LLM_ABORT_NONE) {
        return 1;
    }

    if (mst_llm_cancelled(x->call)) {
        x->abort = MST_LLM_ABORT_CANCELLED;
        return 1;
    }

    if (x->call != NULL && x->call->deadline != 0
        && mst_mono_ms() >= x->call->deadline)
    {
        x->abort = MST_LLM_ABORT_DEADLINE;
        return 1;
    }

    return 0;
}


/* SSE: cut into lines; non-zero aborts (x->abort says why) */

static int
mst_llm_sse_feed(mst_llm_xfer_t *x, const char *p, size_t n)
{
    const char  *nl;
    size_t       len;

    while (n > 0) {
        nl = memchr(p, '\n', n);
        len = nl ? (size_t) (nl - p) : n;

        if (mst_llm_buf_add(&x->line, p, len, MST_LLM_LINE_MAX) != 0) {
            x->abort = MST_LLM_ABORT_UPSTREAM;
            snprintf(x->abort_msg, sizeof(x->abort_msg),
                     "stream line longer than %d bytes", MST_LLM_LINE_MAX);
            return -1;
        }

        if (nl == NULL) {
            return 0;
        }

        len = x->line.len;
        if (len > 0 && x->line.data[len - 1] == '\r') {
            len--;
        }

        if (mst_llm_sse_line(x, x->line.data, len) != 0) {
            return -1;
        }

        x->line.len = 0;
        n -= (size_t) (nl - p) + 1;
        p = nl + 1;
    }

    return 0;
}


static int
mst_llm_sse_line(mst_llm_xfer_t *x, const char *p, size_t n)
{
    if (n == 0) {
        /* the end of an event */
        if (!x->has_data) {
            x->event_error = 0;
            return 0;
        }

        return mst_llm_sse_event(x);
    }

    if (p[0] == ':') {
        return 0;                 /* a comment, e.g. a keep-alive */
    }

    if (n >= 5 && memcmp(p, "data:", 5) == 0) {
        p += 5;
        n -= 5;

        if (n > 0 && *p == ' ') {
            p++;
            n--;
        }

        if (x->has_data && mst_llm_buf_add(&x->data, "\n", 1,
                                           MST_LLM_LINE_MAX) != 0)
        {
            goto too_long;
        }

        if (mst_llm_buf_add(&x->data, p, n, MST_LLM_LINE_MAX) != 0) {
            goto too_long;
        }

        x->has_data = 1;
        return 0;
    }

    if (n >= 6 && memcmp(p, "event:", 6) == 0) {
        x->event_error = (n >= 11 && memcmp(p + n - 5, "error", 5) == 0);
    }

    return 0;

too_long:

    x->abort = MST_LLM_ABORT_UPSTREAM;
    snprintf(x->abort_msg, sizeof(x->abort_msg),
             "stream event larger than %d bytes", MST_LLM_LINE_MAX);
    return -1;
}


static int
mst_llm_sse_event(mst_llm_xfer_t *x)
{
    char           excerpt[MST_LLM_EXCERPT + 8];
    json_t        *chunk, *choice, *delta, *content, *v;
    json_error_t   jerr;
    int            rc;

    x->has_data = 0;
    rc = 0;

    if (x->data.len == 6 && memcmp(x->data.data, "[DONE]", 6) == 0) {
        x->done = 1;
        x->data.len = 0;
        return 0;
    }

    if (x->event_error) {
        mst_llm_excerpt(x->data.data, x->data.len, excerpt, sizeof(excerpt));
        x->abort = MST_LLM_ABORT_UPSTREAM;
        snprintf(x->abort_msg, sizeof(x->abort_msg), "error event after %zu "
                 "bytes: %s", x->delivered, excerpt);
        return -1;
    }

    chunk = json_loadb(x->data.data, x->data.len, 0, &jerr);
    x->data.len = 0;

    if (!json_is_object(chunk)) {
        json_decref(chunk);
        x->abort = MST_LLM_ABORT_UPSTREAM;
        snprintf(x->abort_msg, sizeof(x->abort_msg), "malformed response: "
                 "bad stream chunk after %zu bytes", x->delivered);
        return -1;
    }

    v = json_object_get(chunk, "error");
    if (v != NULL && !json_is_null(v)) {
        x->abort = MST_LLM_ABORT_UPSTREAM;
        v = json_object_get(v, "message");
        snprintf(x->abort_msg, sizeof(x->abort_msg), "error in the stream "
                 "after %zu bytes: %.160s", x->delivered,
                 json_is_string(v) ? json_string_value(v) : "unknown");
        json_decref(chunk);
        return -1;
    }

    if (x->id[0] == '\0') {
        mst_llm_copy(x->id, sizeof(x->id), json_object_get(chunk, "id"));
    }

    if (x->model[0] == '\0') {
        mst_llm_copy(x->model, sizeof(x->model),
                     json_object_get(chunk, "model"));
    }

    v = json_object_get(chunk, "created");
    if (x->created == 0 && json_is_integer(v)) {
        x->created = json_integer_value(v);
    }

    v = json_object_get(chunk, "usage");
    if (json_is_object(v)) {
        json_decref(x->usage);
        x->usage = json_incref(v);
    }

    choice = json_array_get(json_object_get(chunk, "choices"), 0);
    delta = json_object_get(choice, "delta");
    content = json_object_get(delta, "content");

    v = json_object_get(choice, "finish_reason");
    if (json_is_string(v)) {
        mst_llm_copy(x->finish, sizeof(x->finish), v);
    }

    if (json_is_string(content) && json_string_length(content) > 0) {
        rc = mst_llm_deliver(x, json_string_value(content),
                             json_string_length(content));
    }

    json_decref(chunk);
    return rc;
}


static int
mst_llm_deliver(mst_llm_xfer_t *x, const char *s, size_t len)
{
    if (mst_llm_buf_add(&x->content, s, len, MST_LLM_BODY_MAX) != 0) {
        x->abort = MST_LLM_ABORT_UPSTREAM;
        snprintf(x->abort_msg, sizeof(x->abort_msg),
                 "answer larger than %d bytes", MST_LLM_BODY_MAX);
        return -1;
    }

    if (x->call == NULL || x->call->on_chunk == NULL) {
        return 0;
    }

    x->delivered += len;

    if (x->call->on_chunk(s, len, x->call->chunk_arg) != 0) {
        x->abort = MST_LLM_ABORT_STOPPED;
        return -1;
    }

    return 0;
}


/* the provider's error message, or the start of the body, printable */

static void
mst_llm_excerpt(const char *body, size_t len, char *out, size_t outlen)
{
    const char    *s;
    json_t        *root, *e, *m;
    size_t         i, n, max;
    unsigned char  c;

    out[0] = '\0';

    if (body == NULL || len == 0) {
        return;
    }

    root = json_loadb(body, len, 0, NULL);
    m = NULL;

    if (json_is_object(root)) {
        e = json_object_get(root, "error");
        m = json_is_object(e) ? json_object_get(e, "message") : e;
        if (!json_is_string(m)) {
            m = json_object_get(root, "message");
        }
    }

    if (json_is_string(m)) {
        s = json_string_value(m);
        len = json_string_length(m);

    } else {
        s = body;
    }

    max = outlen - 4;
    n = 0;

    for (i = 0; i < len && n < max; i++) {
        c = (unsigned char) s[i];

        if (c < 0x20 || c == 0x7f) {
            if (n > 0 && out[n - 1] != ' ') {
                out[n++] = ' ';
            }
            continue;
        }

        out[n++] = (char) c;
    }

    if (i < len) {
        /* cut: not inside a multibyte character */
        while (n > 0 && ((unsigned char) out[n - 1] & 0xc0) == 0x80) {
            n--;
        }
        if (n > 0 && (unsigned char) out[n - 1] >= 0xc0) {
            n--;
        }
        memcpy(out + n, "...", 3);
        n += 3;
    }

    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }

    out[n] = '\0';
    json_decref(root);
}


static json_t *
mst_llm_usage(json_t *request, const char *answer, size_t len)
{
    size_t   i;
    long     prompt, completion;
    json_t  *msg;

    prompt = 0;

    json_array_foreach(json_object_get(request, "messages"), i, msg) {
        prompt += mst_llm_estimate_tokens(NULL, mst_llm_content_len(
                                          json_object_get(msg, "content")));
    }

    completion = mst_llm_estimate_tokens(answer, len);

    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t) prompt,
                     "completion_tokens", (json_int_t) completion,
                     "total_tokens", (json_int_t) (prompt + completion));
}


static size_t
mst_llm_content_len(json_t *content)
{
    size_t   i, n;
    json_t  *part, *text;

    if (json_is_string(content)) {
        return json_string_length(content);
    }

    n = 0;

    json_array_foreach(content, i, part) {
        text = json_object_get(part, "text");
        if (json_is_string(text)) {
            n += json_string_length(text);
        }
    }

    return n;
}


/* id, object, created, model, choices, usage: always there */

static void
mst_llm_fill(json_t *resp, json_t *request)
{
    char     cid[64], id[MST_ID_LEN + 1];
    json_t  *v;

    v = json_object_get(resp, "id");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        mst_id_new(id);
        snprintf(cid, sizeof(cid), "chatcmpl-%s", id + 3);
        json_object_set_new(resp, "id", json_string(cid));
    }

    json_object_set_new(resp, "object", json_string("chat.completion"));

    if (!json_is_integer(json_object_get(resp, "created"))) {
        json_object_set_new(resp, "created",
                            json_integer(mst_now_ms() / 1000));
    }

    v = json_object_get(resp, "model");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        v = json_object_get(request, "model");
        json_object_set_new(resp, "model", json_string(
            json_is_string(v) ? json_string_value(v) : "unknown"));
    }

    if (!json_is_array(json_object_get(resp, "choices"))) {
        json_object_set_new(resp, "choices", json_array());
    }

    if (!json_is_object(json_object_get(resp, "usage"))) {
        json_object_set_new(resp, "usage", mst_llm_usage(request, NULL, 0));
    }
}


/* mask the API key wherever it appears in err */

static void
mst_llm_redact(const mst_llm_t *llm, char *err, size_t errlen)
{
    char        tmp[1024], *p;
    const char  *key, *s;
    size_t      klen, n, m;

    key = llm->p.api_key;

    if (key == NULL || err == NULL || errlen == 0
        || strstr(err, key) == NULL)
    {
        return;
    }

    klen = strlen(key);
    s = err;
    n = 0;

    while ((p = strstr(s, key)) != NULL && n < sizeof(tmp) - 1) {
        m = (size_t) (p - s);
        if (m > sizeof(tmp) - 1 - n) {
            m = sizeof(tmp) - 1 - n;
        }
        memcpy(tmp + n, s, m);
        n += m;

        m = sizeof("[redacted]") - 1;
        if (m > sizeof(tmp) - 1 - n) {
            m = sizeof(tmp) - 1 - n;
        }
        memcpy(tmp + n, "[redacted]", m);
        n += m;

        s = p + klen;
    }

    m = strlen(s);
    if (m > sizeof(tmp) - 1 - n) {
        m = sizeof(tmp) - 1 - n;
    }
    memcpy(tmp + n, s, m);
    n += m;
    tmp[n] = '\0';

    snprintf(err, errlen, "%s", tmp);
}


/* sleep ms in slices; non-zero when cancelled meanwhile */

static int
mst_llm_sleep(const mst_llm_call_t *call, long ms)
{
    int64_t          until, left;
    struct timespec  ts;

    until = mst_mono_ms() + ms;

    for ( ;; ) {
        if (mst_llm_cancelled(call)) {
            return -1;
        }

        left = until - mst_mono_ms();
        if (left <= 0) {
            return 0;
        }

        if (left > MST_LLM_SLEEP_SLICE_MS) {
            left = MST_LLM_SLEEP_SLICE_MS;
        }

        ts.tv_sec = 0;
        ts.tv_nsec = (long) left * 1000000;
        nanosleep(&ts, NULL);
    }
}


static int
mst_llm_cancelled(const mst_llm_call_t *call)
{
    return call != NULL && call->cancelled != NULL
           && call->cancelled(call->cancel_arg) != 0;
}


/* append; -1 past max bytes or on ENOMEM */

static int
mst_llm_buf_add(mst_llm_buf_t *b, const char *s, size_t n, size_t max)
{
    char    *d;
    size_t   cap;

    if (b->len + n > max) {
        return -1;
    }

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }

        d = realloc(b->data, cap);
        if (d == NULL) {
            return -1;
        }

        b->data = d;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';

    return 0;
}


static void
mst_llm_buf_free(mst_llm_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


static char *
mst_llm_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}


/* a JSON string into dst, cut on a character boundary */

static void
mst_llm_copy(char *dst, size_t size, json_t *v)
{
    size_t  n;

    if (!json_is_string(v)) {
        return;
    }

    n = json_string_length(v);

    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char) json_string_value(v)[n] & 0xc0)
                        == 0x80)
        {
            n--;
        }
    }

    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
}


static uint64_t
mst_llm_random(void)
{
    uint64_t  r;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
        r = (uint64_t) mst_mono_ms() * 6364136223846793005ULL
            + (uint64_t) (uintptr_t) &r;
    }

    return r;
}
