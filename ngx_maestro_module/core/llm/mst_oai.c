/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_oai.h */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "mst_oai.h"
#include "mst_json.h"


#define MST_OAI_BACKOFF_BASE_MS  200
#define MST_OAI_RETRY_AFTER_MAX  (86400L * 365)     /* s: a year */


static int mst_oai_sse_line(mst_oai_sse_t *s, const char *p, size_t n,
    mst_oai_event_pt on_event, void *arg);
static const char *mst_oai_usage_at(const char *p, size_t n);
static void mst_oai_usage_set(json_t *usage, mst_oai_usage_t *u);
static int mst_oai_no_choices(const char *p, size_t n);
static json_t *mst_oai_usage_estimate(json_t *request, size_t answer);
static size_t mst_oai_content_len(json_t *content);
static void mst_oai_copy(char *dst, size_t size, json_t *v);
static time_t mst_oai_http_date(const char *v, size_t n);
static int mst_oai_month(const char *m);


/* ---- bytes ---- */

int
mst_oai_buf_add(mst_oai_buf_t *b, const char *p, size_t n, size_t max)
{
    char    *d;
    size_t   cap;

    if (n > max || b->len > max - n) {
        return MST_EINVAL;
    }

    if (b->cap - b->len < n + 1) {
        cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n + 1) {
            cap *= 2;
        }

        d = realloc(b->data, cap);
        if (d == NULL) {
            return MST_ENOMEM;
        }

        b->data = d;
        b->cap = cap;
    }

    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }

    b->len += n;
    b->data[b->len] = '\0';

    return MST_OK;
}


void
mst_oai_buf_free(mst_oai_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


/* ---- the request ---- */

int
mst_oai_rewrite(json_t *body, const char *model, int stream)
{
    json_t  *opts, *v;

    if (model != NULL
        && json_object_set_new(body, "model", json_string(model)) != 0)
    {
        return MST_ENOMEM;
    }

    if (!stream) {
        v = json_object_get(body, "stream");
        if (v != NULL && !json_is_false(v)
            && json_object_set_new(body, "stream", json_false()) != 0)
        {
            return MST_ENOMEM;
        }

        return MST_OK;
    }

    if (!json_is_true(json_object_get(body, "stream"))
        && json_object_set_new(body, "stream", json_true()) != 0)
    {
        return MST_ENOMEM;
    }

    opts = json_object_get(body, "stream_options");

    if (!json_is_object(opts)) {
        opts = json_object();
        if (json_object_set_new(body, "stream_options", opts) != 0) {
            return MST_ENOMEM;
        }
    }

    if (json_object_set_new(opts, "include_usage", json_true()) != 0) {
        return MST_ENOMEM;
    }

    return MST_OK;
}


/* ---- the response head ---- */

void
mst_oai_head_init(mst_oai_head_t *h)
{
    h->retry_after_ms = -1;
    h->sse = 0;
}


void
mst_oai_header(mst_oai_head_t *h, const char *line, size_t n, time_t now)
{
    const char  *v, *end;

    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* a new head (after a 1xx): forget the last one */
        mst_oai_head_init(h);
        return;
    }

    v = memchr(line, ':', n);
    if (v == NULL) {
        return;
    }

    end = line + n;

    if (v - line == sizeof("retry-after") - 1
        && strncasecmp(line, "retry-after", v - line) == 0)
    {
        h->retry_after_ms = mst_oai_retry_after(v + 1, end - v - 1, now);
        return;
    }

    if (v - line == sizeof("content-type") - 1
        && strncasecmp(line, "content-type", v - line) == 0)
    {
        for (v++; v < end && (*v == ' ' || *v == '\t'); v++) {
            /* void */
        }

        h->sse = (size_t) (end - v) >= sizeof("text/event-stream") - 1
                 && strncasecmp(v, "text/event-stream",
                                sizeof("text/event-stream") - 1) == 0;
    }
}


long
mst_oai_retry_after(const char *v, size_t n, time_t now)
{
    long         secs;
    size_t       i;
    time_t       t;
    const char  *end;

    end = v + n;

    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }

    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '
                       || end[-1] == '\t'))
    {
        end--;
    }

    n = end - v;

    if (n == 0) {
        return -1;
    }

    if (v[0] >= '0' && v[0] <= '9') {
        /* delta-seconds */
        secs = 0;

        for (i = 0; i < n; i++) {
            if (v[i] < '0' || v[i] > '9') {
                return -1;
            }

            if (secs < MST_OAI_RETRY_AFTER_MAX) {
                secs = secs * 10 + (v[i] - '0');
            }
        }

        if (secs > MST_OAI_RETRY_AFTER_MAX) {
            secs = MST_OAI_RETRY_AFTER_MAX;
        }

        return secs * 1000;
    }

    t = mst_oai_http_date(v, n);
    if (t == (time_t) -1) {
        return -1;
    }

    if (t <= now) {
        return 0;
    }

    if (t - now > MST_OAI_RETRY_AFTER_MAX) {
        return MST_OAI_RETRY_AFTER_MAX * 1000;
    }

    return (long) (t - now) * 1000;
}


/*
 * An HTTP-date (RFC 9110, 5.6.7): IMF-fixdate "Sun, 06 Nov 1994 08:49:37
 * GMT", or the obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and
 * asctime "Sun Nov  6 08:49:37 1994" forms. -1: none of them.
 */
static time_t
mst_oai_http_date(const char *v, size_t n)
{
    int        d, y, hh, mm, ss, mon, used;
    char       s[64], m[4];
    struct tm  tm;

    if (n >= sizeof(s)) {
        return (time_t) -1;
    }

    memcpy(s, v, n);
    s[n] = '\0';
    used = -1;

    if (sscanf(s, "%*[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n",
               &d, m, &y, &hh, &mm, &ss, &used) == 6
        && used == (int) n)
    {
        /* IMF-fixdate */

    } else if (used = -1,
               sscanf(s, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n",
                      &d, m, &y, &hh, &mm, &ss, &used) == 6
               && used == (int) n)
    {
        /* RFC 850: a two-digit year */
        y += (y < 70) ? 2000 : 1900;

    } else if (used = -1,
               sscanf(s, "%*[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n",
                      m, &d, &hh, &mm, &ss, &y, &used) == 6
               && used == (int) n)
    {
        /* asctime */

    } else {
        return (time_t) -1;
    }

    mon = mst_oai_month(m);

    if (mon < 0 || d < 1 || d > 31 || y < 1970 || y > 9999 || hh > 23
        || mm > 59 || ss > 60 || hh < 0 || mm < 0 || ss < 0)
    {
        return (time_t) -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;

    return timegm(&tm);
}


static int
mst_oai_month(const char *m)
{
    int  i;

    static const char  *months[] = { "Jan", "Feb", "Mar", "Apr", "May",
                                     "Jun", "Jul", "Aug", "Sep", "Oct",
                                     "Nov", "Dec" };

    if (strlen(m) != 3) {
        return -1;
    }

    for (i = 0; i < 12; i++) {
        if (strcasecmp(m, months[i]) == 0) {
            return i;
        }
    }

    return -1;
}


/* ---- the event stream ---- */

void
mst_oai_sse_init(mst_oai_sse_t *s, size_t max)
{
    memset(s, 0, sizeof(mst_oai_sse_t));
    s->max = max ? max : MST_OAI_LINE_MAX;
}


void
mst_oai_sse_reset(mst_oai_sse_t *s)
{
    s->line.len = 0;
    s->data.len = 0;
    s->has_data = 0;
    s->error = 0;
}


void
mst_oai_sse_free(mst_oai_sse_t *s)
{
    mst_oai_buf_free(&s->line);
    mst_oai_buf_free(&s->data);
    s->has_data = 0;
    s->error = 0;
}


int
mst_oai_sse_feed(mst_oai_sse_t *s, const char *p, size_t n,
    mst_oai_event_pt on_event, void *arg)
{
    int          rc;
    size_t       len;
    const char  *nl, *line;

    while (n > 0) {
        nl = memchr(p, '\n', n);

        if (nl == NULL) {
            /* the rest of a line to come */
            return mst_oai_buf_add(&s->line, p, n, s->max);
        }

        len = (size_t) (nl - p);

        if (s->line.len > 0) {
            rc = mst_oai_buf_add(&s->line, p, len, s->max);
            if (rc != MST_OK) {
                return rc;
            }

            line = s->line.data;
            len = s->line.len;

        } else {
            /* a whole line in these bytes: no copy */
            if (len > s->max) {
                return MST_EINVAL;
            }

            line = p;
        }

        n -= (size_t) (nl - p) + 1;
        p = nl + 1;

        if (len > 0 && line[len - 1] == '\r') {
            len--;
        }

        rc = mst_oai_sse_line(s, line, len, on_event, arg);
        s->line.len = 0;

        if (rc != MST_OK) {
            return rc;
        }
    }

    return MST_OK;
}


int
mst_oai_sse_end(mst_oai_sse_t *s, mst_oai_event_pt on_event, void *arg)
{
    int  rc;

    if (s->line.len > 0) {
        if (s->line.data[s->line.len - 1] == '\r') {
            s->line.len--;
        }

        rc = mst_oai_sse_line(s, s->line.data, s->line.len, on_event, arg);
        s->line.len = 0;

        if (rc != MST_OK) {
            return rc;
        }
    }

    return mst_oai_sse_line(s, "", 0, on_event, arg);
}


/* one line, without its end of line */
static int
mst_oai_sse_line(mst_oai_sse_t *s, const char *p, size_t n,
    mst_oai_event_pt on_event, void *arg)
{
    int          rc;
    size_t       flen;
    const char  *colon;

    if (n == 0) {
        /* the end of an event */
        if (!s->has_data) {
            s->error = 0;
            return MST_OK;
        }

        rc = on_event(arg, s->data.data ? s->data.data : "", s->data.len);

        s->data.len = 0;
        s->has_data = 0;
        s->error = 0;

        return rc;
    }

    if (p[0] == ':') {
        return MST_OK;                  /* a comment: a keep-alive */
    }

    colon = memchr(p, ':', n);
    flen = colon ? (size_t) (colon - p) : n;

    if (colon != NULL) {
        colon++;
        if (colon < p + n && *colon == ' ') {
            colon++;
        }
    }

    if (flen == 4 && memcmp(p, "data", 4) == 0) {
        if (s->has_data) {
            rc = mst_oai_buf_add(&s->data, "\n", 1, s->max);
            if (rc != MST_OK) {
                return rc;
            }
        }

        s->has_data = 1;

        return colon ? mst_oai_buf_add(&s->data, colon, p + n - colon,
                                       s->max)
                     : MST_OK;
    }

    if (flen == 5 && memcmp(p, "event", 5) == 0) {
        s->error = colon != NULL && p + n - colon == 5
                   && memcmp(colon, "error", 5) == 0;
    }

    /* id:, retry:, others: nothing for us */

    return MST_OK;
}


/* ---- usage and chunks ---- */

/*
 * The last "usage" key followed by an object (not null): where that
 * object starts, or NULL. Only then is anything parsed.
 */
static const char *
mst_oai_usage_at(const char *p, size_t n)
{
    const char  *q, *end, *last;

    end = p + n;
    last = NULL;

    while ((q = memmem(p, end - p, "\"usage\"", 7)) != NULL) {
        for (q += 7; q < end && (*q == ' ' || *q == '\t' || *q == '\n'
                                 || *q == '\r' || *q == ':'); q++)
        {
            /* void */
        }

        if (q < end && *q == '{') {
            last = q;
        }

        p = q;
    }

    return last;
}


static void
mst_oai_usage_set(json_t *usage, mst_oai_usage_t *u)
{
    json_t  *pt, *ct;

    if (!json_is_object(usage)) {
        return;
    }

    pt = json_object_get(usage, "prompt_tokens");
    ct = json_object_get(usage, "completion_tokens");

    if (!json_is_integer(pt) && !json_is_integer(ct)) {
        return;
    }

    u->prompt_tokens = json_is_integer(pt) && json_integer_value(pt) > 0
                       ? (long) json_integer_value(pt) : 0;
    u->completion_tokens = json_is_integer(ct)
                           && json_integer_value(ct) > 0
                           ? (long) json_integer_value(ct) : 0;
    u->known = 1;
}


int
mst_oai_event(const char *p, size_t n, mst_oai_usage_t *u)
{
    json_t      *r;
    const char  *q;

    if (n == 6 && memcmp(p, "[DONE]", 6) == 0) {
        return MST_OAI_DONE;
    }

    if (!mst_json_object_ok(p, n)) {
        return MST_OAI_BAD;
    }

    q = mst_oai_usage_at(p, n);
    if (q == NULL) {
        return MST_OAI_CHUNK;
    }

    /* the one chunk that carries usage: its usage object is parsed */
    r = json_loadb(q, p + n - q, JSON_DISABLE_EOF_CHECK, NULL);
    mst_oai_usage_set(r, u);
    json_decref(r);

    return mst_oai_no_choices(p, n) ? MST_OAI_USAGE_ONLY : MST_OAI_CHUNK;
}


/* "choices": [] or no "choices" at all (in text checked for syntax) */
static int
mst_oai_no_choices(const char *p, size_t n)
{
    const char  *q, *end;

    end = p + n;

    while ((q = memmem(p, end - p, "\"choices\"", 9)) != NULL) {
        for (q += 9; q < end && (*q == ' ' || *q == '\t' || *q == '\n'
                                 || *q == '\r'); q++)
        {
            /* void */
        }

        if (q == end || *q != ':') {
            p = q;              /* a value "choices", not the key */
            continue;
        }

        for (q++; q < end && (*q == ' ' || *q == '\t' || *q == '\n'
                              || *q == '\r'); q++)
        {
            /* void */
        }

        if (q == end || *q != '[') {
            return 0;
        }

        for (q++; q < end && (*q == ' ' || *q == '\t' || *q == '\n'
                              || *q == '\r'); q++)
        {
            /* void */
        }

        return q < end && *q == ']';
    }

    return 1;
}


int
mst_oai_body(const char *p, size_t n, mst_oai_usage_t *u, json_t **root)
{
    json_t       *r;
    const char   *q;

    if (root == NULL) {
        /* passed on as it came: its syntax is enough, and only the usage
           object is parsed */
        if (!mst_json_object_ok(p, n)
            || (memmem(p, n, "\"choices\"", 9) == NULL
                && memmem(p, n, "\"data\"", 6) == NULL))
        {
            return MST_EINVAL;
        }

        q = mst_oai_usage_at(p, n);

        if (q != NULL) {
            r = json_loadb(q, p + n - q, JSON_DISABLE_EOF_CHECK, NULL);
            mst_oai_usage_set(r, u);
            json_decref(r);
        }

        return MST_OK;
    }

    r = json_loadb(p, n, JSON_ALLOW_NUL, NULL);

    if (!json_is_object(r)
        || (!json_is_array(json_object_get(r, "choices"))
            && !json_is_array(json_object_get(r, "data"))))
    {
        json_decref(r);
        return MST_EINVAL;
    }

    mst_oai_usage_set(json_object_get(r, "usage"), u);
    *root = r;

    return MST_OK;
}


long
mst_oai_estimate_tokens(size_t len)
{
    return (long) ((len + 3) / 4);
}


static json_t *
mst_oai_usage_estimate(json_t *request, size_t answer)
{
    size_t   i;
    long     prompt, completion;
    json_t  *msg;

    prompt = 0;

    json_array_foreach(json_object_get(request, "messages"), i, msg) {
        prompt += mst_oai_estimate_tokens(mst_oai_content_len(
                                          json_object_get(msg, "content")));
    }

    completion = mst_oai_estimate_tokens(answer);

    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t) prompt,
                     "completion_tokens", (json_int_t) completion,
                     "total_tokens", (json_int_t) (prompt + completion));
}


static size_t
mst_oai_content_len(json_t *content)
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


/* ---- a plugin's answer ---- */

int
mst_oai_answer_event(mst_oai_answer_t *a, const char *p, size_t n,
    int error_event, size_t *added)
{
    int      rc;
    char     excerpt[MST_OAI_EXCERPT + 8];
    json_t  *chunk, *choice, *content, *v;

    *added = 0;

    if (a->done) {
        return MST_OK;                  /* nothing counts after the end */
    }

    if (error_event) {
        mst_oai_excerpt(p, n, NULL, excerpt, sizeof(excerpt));
        return mst_err(a->error, sizeof(a->error), MST_EUPSTREAM,
                       "error event after %zu bytes: %s", a->content.len,
                       excerpt);
    }

    if (n == 6 && memcmp(p, "[DONE]", 6) == 0) {
        a->done = 1;
        return MST_OK;
    }

    chunk = json_loadb(p, n, JSON_ALLOW_NUL, NULL);

    if (!json_is_object(chunk)) {
        json_decref(chunk);
        return mst_err(a->error, sizeof(a->error), MST_EUPSTREAM,
                       "malformed response: bad stream chunk after %zu "
                       "bytes", a->content.len);
    }

    v = json_object_get(chunk, "error");
    if (v != NULL && !json_is_null(v)) {
        v = json_is_object(v) ? json_object_get(v, "message") : v;
        rc = mst_err(a->error, sizeof(a->error), MST_EUPSTREAM,
                     "error in the stream after %zu bytes: %.160s",
                     a->content.len,
                     json_is_string(v) ? json_string_value(v) : "unknown");
        json_decref(chunk);
        return rc;
    }

    if (a->id[0] == '\0') {
        mst_oai_copy(a->id, sizeof(a->id), json_object_get(chunk, "id"));
    }

    if (a->model[0] == '\0') {
        mst_oai_copy(a->model, sizeof(a->model),
                     json_object_get(chunk, "model"));
    }

    v = json_object_get(chunk, "created");
    if (a->created == 0 && json_is_integer(v)) {
        a->created = json_integer_value(v);
    }

    v = json_object_get(chunk, "usage");
    if (json_is_object(v)) {
        json_decref(a->usage);
        a->usage = json_incref(v);
    }

    choice = json_array_get(json_object_get(chunk, "choices"), 0);
    content = json_object_get(json_object_get(choice, "delta"), "content");

    v = json_object_get(choice, "finish_reason");
    if (json_is_string(v)) {
        mst_oai_copy(a->finish, sizeof(a->finish), v);
    }

    rc = MST_OK;

    if (json_is_string(content) && json_string_length(content) > 0) {
        rc = mst_oai_buf_add(&a->content, json_string_value(content),
                             json_string_length(content), MST_OAI_BODY_MAX);
        if (rc == MST_OK) {
            *added = json_string_length(content);

        } else {
            rc = mst_err(a->error, sizeof(a->error), MST_EUPSTREAM,
                         "answer larger than %d bytes", MST_OAI_BODY_MAX);
        }
    }

    json_decref(chunk);

    return rc;
}


int
mst_oai_answer_complete(const mst_oai_answer_t *a)
{
    return a->done || a->finish[0] != '\0';
}


json_t *
mst_oai_answer_json(mst_oai_answer_t *a, json_t *request, const char *model)
{
    json_t  *resp, *usage;

    if (model == NULL || model[0] == '\0') {
        model = a->model[0] ? a->model : NULL;
    }

    usage = a->usage;
    a->usage = NULL;

    if (usage == NULL) {
        usage = mst_oai_usage_estimate(request, a->content.len);
    }

    resp = json_pack("{s:s, s:s, s:I, s:s?, s:[{s:i, s:{s:s, s:s%}, s:s}],"
                     " s:o*}",
                     "id", a->id, "object", "chat.completion",
                     "created", (json_int_t) a->created, "model", model,
                     "choices", "index", 0, "message", "role", "assistant",
                     "content", a->content.data ? a->content.data : "",
                     a->content.len,
                     "finish_reason", a->finish[0] ? a->finish : "stop",
                     "usage", usage);

    if (resp == NULL) {
        return NULL;
    }

    mst_oai_complete(resp, request, model);

    return resp;
}


void
mst_oai_answer_free(mst_oai_answer_t *a)
{
    mst_oai_buf_free(&a->content);
    json_decref(a->usage);
    a->usage = NULL;
}


void
mst_oai_complete(json_t *resp, json_t *request, const char *model)
{
    char     cid[64], id[MST_ID_LEN + 1];
    json_t  *v, *content;

    v = json_object_get(resp, "id");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        mst_id_new(id);
        snprintf(cid, sizeof(cid), "chatcmpl-%s", id + 3);
        json_object_set_new(resp, "id", json_string(cid));
    }

    v = json_object_get(resp, "object");
    if (!json_is_string(v)) {
        json_object_set_new(resp, "object", json_string("chat.completion"));
    }

    v = json_object_get(resp, "created");
    if (!json_is_integer(v) || json_integer_value(v) == 0) {
        json_object_set_new(resp, "created",
                            json_integer(mst_now_ms() / 1000));
    }

    v = json_object_get(resp, "model");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        if (model == NULL) {
            v = json_object_get(request, "model");
            model = json_is_string(v) ? json_string_value(v) : "unknown";
        }

        json_object_set_new(resp, "model", json_string(model));
    }

    if (!json_is_array(json_object_get(resp, "choices"))) {
        json_object_set_new(resp, "choices", json_array());
    }

    if (!json_is_object(json_object_get(resp, "usage"))) {
        content = json_object_get(json_object_get(json_array_get(
                      json_object_get(resp, "choices"), 0), "message"),
                      "content");
        json_object_set_new(resp, "usage", mst_oai_usage_estimate(request,
            json_is_string(content) ? json_string_length(content) : 0));
    }
}


/* a JSON string into dst, cut on a character boundary */
static void
mst_oai_copy(char *dst, size_t size, json_t *v)
{
    size_t       n;
    const char  *s;

    if (!json_is_string(v)) {
        return;
    }

    s = json_string_value(v);
    n = json_string_length(v);

    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80) {
            n--;
        }
    }

    if (memchr(s, '\0', n) != NULL) {
        n = strlen(s);
    }

    memcpy(dst, s, n);
    dst[n] = '\0';
}


/* ---- an attempt's outcome ---- */

int
mst_oai_classify(int xfer, long status, int malformed, unsigned *fail)
{
    *fail = 0;

    if (xfer == MST_OAI_XFER_TIMEOUT) {
        *fail = MST_FAIL_TIMEOUT;
        return MST_OAI_RETRY;
    }

    if (xfer != MST_OAI_XFER_OK) {
        *fail = MST_FAIL_CONNECT;
        return MST_OAI_RETRY;
    }

    if (status >= 200 && status <= 299) {
        if (malformed) {
            *fail = MST_FAIL_MALFORMED;
            return MST_OAI_RETRY;
        }

        return MST_OAI_ANSWER;
    }

    if (status == 400 || status == 413 || status == 422) {
        /* the request: another provider would say the same */
        return MST_OAI_CLIENT;
    }

    if (status == 429) {
        *fail = MST_FAIL_429;
        return MST_OAI_RETRY;
    }

    *fail = MST_FAIL_5XX;

    if (status >= 500) {
        return MST_OAI_RETRY;
    }

    /* 401, 403, 404, 3xx...: this provider will not do it again */
    return MST_OAI_NEXT;
}


/* ---- backoff ---- */

uint64_t
mst_oai_random(void *arg)
{
    uint64_t                   x;
    static __thread uint64_t   state;

    if (state == 0) {
        if (getrandom(&state, sizeof(state), GRND_NONBLOCK)
            != sizeof(state))
        {
            state = (uint64_t) mst_mono_ms() * 0x9e3779b97f4a7c15ULL
                    + (uint64_t) (uintptr_t) &x;
        }
        state |= 1;
    }

    x = state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state = x;

    return x * 0x2545f4914f6cdd1dULL;
}


long
mst_oai_backoff(unsigned attempt, long base_ms, long retry_after_ms,
    long left_ms, mst_oai_random_pt rnd, void *arg)
{
    long      wait;
    unsigned  i;
    uint64_t  cap;

    if (left_ms == 0) {
        return -1;
    }

    if (retry_after_ms >= 0) {
        /* the provider said when: not sooner, and not past our limits */
        if (retry_after_ms > MST_OAI_BACKOFF_MAX_MS
            || (left_ms > 0 && retry_after_ms > left_ms))
        {
            return -1;
        }

        return retry_after_ms;
    }

    cap = (uint64_t) (base_ms > 0 ? base_ms : MST_OAI_BACKOFF_BASE_MS);

    for (i = 0; i < attempt && cap < MST_OAI_BACKOFF_MAX_MS; i++) {
        cap <<= 1;
    }

    if (cap > MST_OAI_BACKOFF_MAX_MS) {
        cap = MST_OAI_BACKOFF_MAX_MS;
    }

    wait = (long) ((rnd ? rnd(arg) : mst_oai_random(NULL)) % (cap + 1));

    if (left_ms > 0 && wait > left_ms) {
        wait = left_ms;
    }

    return wait;
}


/* ---- errors ---- */

void
mst_oai_excerpt(const char *body, size_t len, const char *key, char *out,
    size_t outlen)
{
    const char     *s;
    json_t         *root, *e, *m;
    size_t          i, n, k, max, klen, want;
    unsigned char   c;

    if (outlen == 0) {
        return;
    }

    out[0] = '\0';

    if (body == NULL || len == 0 || outlen < 8) {
        return;
    }

    root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
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

    klen = (key != NULL) ? strlen(key) : 0;
    max = outlen - 4;
    if (max > MST_OAI_EXCERPT) {
        max = MST_OAI_EXCERPT;
    }

    n = 0;

    for (i = 0; i < len && n < max; i++) {
        if (klen > 0 && len - i >= klen && memcmp(s + i, key, klen) == 0) {
            /* the key, never a piece of it */
            if (max - n < sizeof("[redacted]") - 1) {
                break;
            }

            memcpy(out + n, "[redacted]", sizeof("[redacted]") - 1);
            n += sizeof("[redacted]") - 1;
            i += klen - 1;
            continue;
        }

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
        for (k = n; k > 0 && ((unsigned char) out[k - 1] & 0xc0) == 0x80;
             k--)
        {
            /* void */
        }

        if (k > 0 && (unsigned char) out[k - 1] >= 0xc0) {
            c = (unsigned char) out[k - 1];
            want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

            if (n - (k - 1) < want) {
                n = k - 1;
            }
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


void
mst_oai_mask(char *s, size_t size, const char *key)
{
    char    tmp[1024], *p;
    size_t  klen, n, m;

    if (key == NULL || key[0] == '\0' || s == NULL || size == 0
        || strstr(s, key) == NULL)
    {
        return;
    }

    klen = strlen(key);
    n = 0;
    p = s;

    while (*p != '\0' && n < sizeof(tmp) - 1) {
        if (strncmp(p, key, klen) == 0) {
            m = sizeof("[redacted]") - 1;
            if (m > sizeof(tmp) - 1 - n) {
                m = sizeof(tmp) - 1 - n;
            }
            memcpy(tmp + n, "[redacted]", m);
            n += m;
            p += klen;
            continue;
        }

        tmp[n++] = *p++;
    }

    tmp[n] = '\0';
    snprintf(s, size, "%s", tmp);
}


size_t
mst_oai_input_len(const json_t *request)
{
    size_t   i, n;
    json_t  *msg, *input, *v;

    n = 0;

    json_array_foreach(json_object_get(request, "messages"), i, msg) {
        n += mst_oai_content_len(json_object_get(msg, "content"));
    }

    input = json_object_get(request, "input");

    if (json_is_string(input)) {
        n += json_string_length(input);

    } else if (json_is_array(input)) {
        json_array_foreach(input, i, v) {
            if (json_is_string(v)) {
                n += json_string_length(v);

            } else if (json_is_array(v)) {
                n += 4 * json_array_size(v);

            } else {
                n += 4;         /* one token of a token array */
            }
        }
    }

    return n;
}
