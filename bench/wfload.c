/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * wfload: the load client of the orchestration benchmark. Plain blocking
 * sockets, one thread per connection, HTTP/1.1 keep-alive to 127.0.0.1
 * only; it prints one JSON line of results on stdout.
 *
 * Modes (-m):
 *
 *  throughput  -c threads POST /api/v1/workflows as fast as the server
 *              answers (503 queue_full: wait 1 ms and retry) until -n are
 *              accepted; then the main thread polls GET /healthz every
 *              0.5 ms until "active" is 0, and checks every id with
 *              GET /api/v1/workflows/{id} (untimed unless one is still
 *              not final). Wall time = first POST .. all complete.
 *
 *  latency     -n sequential runs on one connection: POST, then GET the
 *              workflow back to back until its status is final.
 *              Latency = POST sent .. first GET that shows it complete.
 *
 *  sse         -n sequential POST /api/v1/stream/workflow (HTTP/1.0, so
 *              the stream ends with the connection); latency = request
 *              sent .. "event: done" received.
 *
 * -P pid,pid: nginx worker pids; their CPU time (utime + stime of all their
 * threads, /proc/PID/stat) is measured over the timed phase. The client's
 * own CPU time comes from getrusage(). A deadline (-t seconds) bounds
 * every mode: past it the client prints an error and exits 2.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>


#define WL_MAX_PIDS  16


typedef struct {
    int      fd;
    char    *buf;           /* received, not consumed yet: buf[pos..len) */
    size_t   pos;
    size_t   len;
    size_t   cap;
    char    *body;          /* body of the last response, NUL-terminated */
    size_t   blen;
    size_t   bcap;
    int      status;
    int      close;         /* server said Connection: close */
} wl_conn_t;


static const char  *wl_host = "127.0.0.1";
static int          wl_port = 8080;
static long         wl_n = 2000;
static int          wl_conc = 32;
static const char  *wl_workflow = "bench5";
static double       wl_deadline;
static int          wl_npids;
static int          wl_pids[WL_MAX_PIDS];
static char         wl_body[512];
static size_t       wl_body_len;

static char       (*wl_ids)[32];
static long         wl_next;
static long         wl_retries;
static int          wl_failed;
static char         wl_errmsg[256];
static pthread_mutex_t  wl_lock = PTHREAD_MUTEX_INITIALIZER;


static double
wl_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
wl_die(const char *fmt, ...)
{
    va_list  args;
    char     msg[512];

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    printf("{\"error\":\"%s\"}\n", msg);
    fflush(stdout);
    exit(2);
}


static void
wl_check_deadline(void)
{
    if (wl_now() > wl_deadline) {
        wl_die("deadline exceeded");
    }
}


static double
wl_cpu_self_ms(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}


/* utime + stime of the server workers, all threads, in ms */
static double
wl_cpu_server_ms(void)
{
    int     i;
    char    path[64], line[2048], *p;
    FILE   *f;
    double  total;
    unsigned long long  ut, st;

    total = 0;

    for (i = 0; i < wl_npids; i++) {
        snprintf(path, sizeof(path), "/proc/%d/stat", wl_pids[i]);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        if (fgets(line, sizeof(line), f) != NULL) {
            /* fields after "(comm)": state is field 3, utime 14, stime 15 */
            p = strrchr(line, ')');
            if (p != NULL
                && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u"
                          " %*u %llu %llu", &ut, &st) == 2)
            {
                total += (ut + st) * 1e3 / sysconf(_SC_CLK_TCK);
            }
        }
        fclose(f);
    }

    return total;
}


/* connection */

static int
wl_connect(wl_conn_t *c)
{
    int                 one;
    struct timeval      tv;
    struct sockaddr_in  sin;

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd == -1) {
        return -1;
    }

    one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(wl_port);
    inet_pton(AF_INET, wl_host, &sin.sin_addr);

    if (connect(c->fd, (struct sockaddr *) &sin, sizeof(sin)) == -1) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }

    c->pos = 0;
    c->len = 0;
    c->close = 0;

    return 0;
}


static void
wl_disconnect(wl_conn_t *c)
{
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }
    c->pos = 0;
    c->len = 0;
}


/* read more bytes into buf; 0 on EOF, -1 on error */
static ssize_t
wl_fill(wl_conn_t *c)
{
    ssize_t  n;

    if (c->pos > 0 && c->pos == c->len) {
        c->pos = 0;
        c->len = 0;
    }

    if (c->cap - c->len < 16384) {
        if (c->pos > 0) {
            memmove(c->buf, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos;
            c->pos = 0;
        }
        if (c->cap - c->len < 16384) {
            c->cap = c->cap ? c->cap * 2 : 65536;
            c->buf = realloc(c->buf, c->cap);
            if (c->buf == NULL) {
                wl_die("out of memory");
            }
        }
    }

    do {
        n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    } while (n == -1 && errno == EINTR);

    if (n > 0) {
        c->len += n;
    }

    return n;
}


static void
wl_body_append(wl_conn_t *c, const char *p, size_t n)
{
    if (c->blen + n + 1 > c->bcap) {
        while (c->blen + n + 1 > c->bcap) {
            c->bcap = c->bcap ? c->bcap * 2 : 65536;
        }
        c->body = realloc(c->body, c->bcap);
        if (c->body == NULL) {
            wl_die("out of memory");
        }
    }
    memcpy(c->body + c->blen, p, n);
    c->blen += n;
    c->body[c->blen] = '\0';
}


/* a line ending in CRLF starting at buf[pos]; returns its length or -1 */
static ssize_t
wl_line(wl_conn_t *c)
{
    char  *e;

    for ( ;; ) {
        e = memmem(c->buf + c->pos, c->len - c->pos, "\r\n", 2);
        if (e != NULL) {
            return e - (c->buf + c->pos);
        }
        if (wl_fill(c) <= 0) {
            return -1;
        }
    }
}


static int
wl_read_response(wl_conn_t *c)
{
    char    *h, *e, *p;
    long     clen;
    size_t   hlen, n;
    ssize_t  ll;
    int      chunked;

    c->blen = 0;
    if (c->bcap == 0) {
        wl_body_append(c, "", 0);
    }
    c->body[0] = '\0';

    for ( ;; ) {
        e = memmem(c->buf + c->pos, c->len - c->pos, "\r\n\r\n", 4);
        if (e != NULL) {
            break;
        }
        if (wl_fill(c) <= 0) {
            return -1;
        }
    }

    h = c->buf + c->pos;
    hlen = e + 4 - h;
    h[hlen - 2] = '\0';

    if (sscanf(h, "HTTP/1.%*d %d", &c->status) != 1) {
        return -1;
    }

    clen = -1;
    chunked = 0;
    c->close = 0;

    for (p = strstr(h, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "content-length:", 15) == 0) {
            clen = strtol(p + 17, NULL, 10);
        } else if (strncasecmp(p + 2, "transfer-encoding:", 18) == 0
                   && strstr(p + 20, "chunked") != NULL)
        {
            chunked = 1;
        } else if (strncasecmp(p + 2, "connection:", 11) == 0
                   && strncasecmp(p + 13 + strspn(p + 13, " "), "close", 5)
                      == 0)
        {
            c->close = 1;
        }
    }

    c->pos += hlen;

    if (chunked) {
        for ( ;; ) {
            ll = wl_line(c);
            if (ll < 0) {
                return -1;
            }
            n = strtoul(c->buf + c->pos, NULL, 16);
            c->pos += ll + 2;
            if (n == 0) {
                /* no trailers expected: the empty line */
                if (wl_line(c) < 0) {
                    return -1;
                }
                c->pos += 2;
                break;
            }
            while (c->len - c->pos < n + 2) {
                if (wl_fill(c) <= 0) {
                    return -1;
                }
            }
            wl_body_append(c, c->buf + c->pos, n);
            c->pos += n + 2;
        }

    } else if (clen >= 0) {
        while (c->len - c->pos < (size_t) clen) {
            if (wl_fill(c) <= 0) {
                return -1;
            }
        }
        wl_body_append(c, c->buf + c->pos, clen);
        c->pos += clen;

    } else {
        /* until close */
        for ( ;; ) {
            wl_body_append(c, c->buf + c->pos, c->len - c->pos);
            c->pos = c->len;
            if (wl_fill(c) <= 0) {
                break;
            }
        }
        c->close = 1;
    }

    if (c->close) {
        wl_disconnect(c);
    }

    return 0;
}


/* one request, keep-alive; reconnects once if the connection was closed */
static int
wl_request(wl_conn_t *c, const char *method, const char *path,
    const char *body, size_t blen)
{
    int      attempt;
    char     req[1024];
    size_t   rlen;
    ssize_t  n;

    if (body != NULL) {
        rlen = snprintf(req, sizeof(req),
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n", method, path, blen);
    } else {
        rlen = snprintf(req, sizeof(req),
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                        method, path);
    }

    if (body != NULL && rlen + blen < sizeof(req)) {
        memcpy(req + rlen, body, blen);
        rlen += blen;
        body = NULL;
    }

    for (attempt = 0; attempt < 2; attempt++) {
        if (c->fd == -1 && wl_connect(c) != 0) {
            return -1;
        }

        n = send(c->fd, req, rlen, MSG_NOSIGNAL);
        if (n == (ssize_t) rlen && body != NULL) {
            n = send(c->fd, body, blen, MSG_NOSIGNAL) == (ssize_t) blen
                ? n : -1;
        }

        if (n == (ssize_t) rlen && wl_read_response(c) == 0) {
            return 0;
        }

        /* a keep-alive connection the server closed: once more */
        wl_disconnect(c);
    }

    return -1;
}


/* JSON helpers: enough for the server's compact output */

/* the value of a top-level key of an object, or NULL */
static const char *
wl_json_top(const char *s, const char *key)
{
    int          depth, instr;
    size_t       klen;
    const char  *p, *kstart;

    depth = 0;
    instr = 0;
    kstart = NULL;
    klen = strlen(key);

    for (p = s; *p; p++) {
        if (instr) {
            if (*p == '\\' && p[1]) {
                p++;
            } else if (*p == '"') {
                instr = 0;
                if (depth == 1 && kstart != NULL
                    && (size_t) (p - kstart) == klen
                    && strncmp(kstart, key, klen) == 0)
                {
                    p++;
                    while (*p == ' ') {
                        p++;
                    }
                    if (*p == ':') {
                        p++;
                        while (*p == ' ') {
                            p++;
                        }
                        return p;
                    }
                    p--;
                }
                kstart = NULL;
            }
            continue;
        }

        switch (*p) {
        case '"':
            instr = 1;
            kstart = p + 1;
            break;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            depth--;
            break;
        }
    }

    return NULL;
}


/* copies a top-level string value; returns 0 or -1 */
static int
wl_json_str(const char *s, const char *key, char *out, size_t size)
{
    size_t       i;
    const char  *v;

    v = wl_json_top(s, key);
    if (v == NULL || *v != '"') {
        return -1;
    }

    for (i = 0, v++; *v && *v != '"' && i + 1 < size; i++, v++) {
        out[i] = *v;
    }
    out[i] = '\0';

    return 0;
}


static int
wl_final(const char *status)
{
    return strcmp(status, "complete") == 0 || strcmp(status, "failed") == 0
           || strcmp(status, "cancelled") == 0;
}


static int
wl_cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
wl_pct(double *v, long n, double p)
{
    long  i;

    i = (long) (p * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}


/* POST a workflow; on 202 copies its id. Returns the HTTP status. */
static int
wl_submit(wl_conn_t *c, char *id)
{
    if (wl_request(c, "POST", "/api/v1/workflows", wl_body, wl_body_len)
        != 0)
    {
        return -1;
    }

    if (c->status == 202 && wl_json_str(c->body, "id", id, 32) != 0) {
        return -2;
    }

    return c->status;
}


/* GET a workflow's status; returns 0 or -1 */
static int
wl_status(wl_conn_t *c, const char *id, char *status, size_t size)
{
    char  path[96];

    snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);

    if (wl_request(c, "GET", path, NULL, 0) != 0 || c->status != 200) {
        return -1;
    }

    return wl_json_str(c->body, "status", status, size);
}


/* throughput */

static void *
wl_submitter(void *data)
{
    int        rc;
    long       i;
    char       id[32];
    wl_conn_t  c;

    memset(&c, 0, sizeof(c));
    c.fd = -1;

    for ( ;; ) {
        i = __atomic_fetch_add(&wl_next, 1, __ATOMIC_RELAXED);
        if (i >= wl_n || wl_failed) {
            break;
        }

        for ( ;; ) {
            rc = wl_submit(&c, id);
            if (rc == 202) {
                memcpy(wl_ids[i], id, sizeof(id));
                break;
            }
            if (rc == 503 && wl_now() < wl_deadline) {
                __atomic_fetch_add(&wl_retries, 1, __ATOMIC_RELAXED);
                usleep(1000);
                continue;
            }
            pthread_mutex_lock(&wl_lock);
            wl_failed = 1;
            snprintf(wl_errmsg, sizeof(wl_errmsg), "POST answered %d", rc);
            pthread_mutex_unlock(&wl_lock);
            break;
        }
    }

    wl_disconnect(&c);
    free(c.buf);
    free(c.body);

    return NULL;
}


static void
wl_throughput(void)
{
    int         i, nfailed, nslow;
    long        k, active;
    char        status[32];
    double      t0, t_sub, t_end, cpu0, cpu1, srv0, srv1, wall;
    const char *v;
    pthread_t  *th;
    wl_conn_t   c;

    wl_ids = calloc(wl_n, sizeof(*wl_ids));
    th = calloc(wl_conc, sizeof(pthread_t));
    if (wl_ids == NULL || th == NULL) {
        wl_die("out of memory");
    }

    memset(&c, 0, sizeof(c));
    c.fd = -1;

    cpu0 = wl_cpu_self_ms();
    srv0 = wl_cpu_server_ms();
    t0 = wl_now();

    for (i = 0; i < wl_conc; i++) {
        pthread_create(&th[i], NULL, wl_submitter, NULL);
    }
    for (i = 0; i < wl_conc; i++) {
        pthread_join(th[i], NULL);
    }

    t_sub = wl_now();

    if (wl_failed) {
        wl_die("%s", wl_errmsg);
    }

    /* all accepted: wait until no workflow is active on any worker */
    for ( ;; ) {
        wl_check_deadline();
        if (wl_request(&c, "GET", "/healthz", NULL, 0) != 0
            || c.status != 200)
        {
            wl_die("GET /healthz failed");
        }
        v = strstr(c.body, "\"active\":");
        if (v == NULL) {
            wl_die("no workflows.active in /healthz");
        }
        active = strtol(v + 9, NULL, 10);
        if (active == 0) {
            break;
        }
        usleep(500);
    }

    t_end = wl_now();
    cpu1 = wl_cpu_self_ms();
    srv1 = wl_cpu_server_ms();

    /* every id must be final; wait for stragglers (timed) */
    nfailed = 0;
    nslow = 0;
    for (k = 0; k < wl_n; k++) {
        for ( ;; ) {
            wl_check_deadline();
            if (wl_status(&c, wl_ids[k], status, sizeof(status)) != 0) {
                wl_die("GET %s failed", wl_ids[k]);
            }
            if (wl_final(status)) {
                break;
            }
            nslow++;
            usleep(500);
            t_end = wl_now();
        }
        if (strcmp(status, "complete") != 0) {
            nfailed++;
        }
    }

    wall = t_end - t0;

    printf("{\"mode\":\"throughput\",\"n\":%ld,\"conc\":%d,"
           "\"wall_ms\":%.1f,\"submit_ms\":%.1f,\"wps\":%.1f,"
           "\"per_step_us\":%.2f,\"retries_503\":%ld,\"not_complete\":%d,"
           "\"late_polls\":%d,\"client_cpu_ms\":%.1f,"
           "\"server_cpu_ms\":%.1f,\"server_cpu_per_step_us\":%.2f}\n",
           wl_n, wl_conc, wall * 1e3, (t_sub - t0) * 1e3, wl_n / wall,
           wall * 1e6 / (wl_n * 5.0), wl_retries, nfailed, nslow,
           cpu1 - cpu0, srv1 - srv0,
           wl_npids ? (srv1 - srv0) * 1e3 / (wl_n * 5.0) : 0.0);

    wl_disconnect(&c);
    free(c.buf);
    free(c.body);
    free(th);
    free(wl_ids);
}


/* latency */

static void
wl_latency(void)
{
    int         rc, nfailed;
    long        k, polls;
    char        id[32], status[32];
    double      t0, t1, cpu0, srv0, *lat, *srv;
    const char *v;
    wl_conn_t   c;

    lat = calloc(wl_n, sizeof(double));
    srv = calloc(wl_n, sizeof(double));
    if (lat == NULL || srv == NULL) {
        wl_die("out of memory");
    }

    memset(&c, 0, sizeof(c));
    c.fd = -1;
    nfailed = 0;
    polls = 0;

    cpu0 = wl_cpu_self_ms();
    srv0 = wl_cpu_server_ms();

    for (k = 0; k < wl_n; k++) {
        t0 = wl_now();

        rc = wl_submit(&c, id);
        if (rc != 202) {
            wl_die("POST answered %d", rc);
        }

        for ( ;; ) {
            wl_check_deadline();
            if (wl_status(&c, id, status, sizeof(status)) != 0) {
                wl_die("GET %s failed", id);
            }
            polls++;
            if (wl_final(status)) {
                break;
            }
        }

        t1 = wl_now();
        lat[k] = (t1 - t0) * 1e6;

        if (strcmp(status, "complete") != 0) {
            nfailed++;
        }

        v = wl_json_top(c.body, "timings");
        v = v ? strstr(v, "\"total_ms\":") : NULL;
        srv[k] = v ? strtod(v + 11, NULL) : -1;
    }

    qsort(lat, wl_n, sizeof(double), wl_cmp_double);
    qsort(srv, wl_n, sizeof(double), wl_cmp_double);

    printf("{\"mode\":\"latency\",\"n\":%ld,\"p50_us\":%.1f,\"p90_us\":%.1f,"
           "\"p99_us\":%.1f,\"min_us\":%.1f,\"per_step_p50_us\":%.2f,"
           "\"server_total_ms_p50\":%.1f,\"polls_per_run\":%.1f,"
           "\"not_complete\":%d,\"client_cpu_ms\":%.1f,"
           "\"server_cpu_ms\":%.1f}\n",
           wl_n, wl_pct(lat, wl_n, 0.5), wl_pct(lat, wl_n, 0.9),
           wl_pct(lat, wl_n, 0.99), lat[0], wl_pct(lat, wl_n, 0.5) / 5,
           wl_pct(srv, wl_n, 0.5), (double) polls / wl_n, nfailed,
           wl_cpu_self_ms() - cpu0, wl_cpu_server_ms() - srv0);

    wl_disconnect(&c);
    free(c.buf);
    free(c.body);
    free(lat);
    free(srv);
}


/* sse */

static void
wl_sse(void)
{
    int        nbad;
    long       k;
    char       req[1024];
    size_t     rlen;
    double     t0, *lat;
    wl_conn_t  c;

    lat = calloc(wl_n, sizeof(double));
    if (lat == NULL) {
        wl_die("out of memory");
    }

    memset(&c, 0, sizeof(c));
    c.fd = -1;
    nbad = 0;

    rlen = snprintf(req, sizeof(req),
                    "POST /api/v1/stream/workflow HTTP/1.0\r\n"
                    "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n%s", wl_body_len, wl_body);

    for (k = 0; k < wl_n; k++) {
        wl_check_deadline();

        if (wl_connect(&c) != 0) {
            wl_die("connect() failed");
        }

        t0 = wl_now();

        if (send(c.fd, req, rlen, MSG_NOSIGNAL) != (ssize_t) rlen) {
            wl_die("send() failed");
        }

        for ( ;; ) {
            if (wl_fill(&c) <= 0) {
                wl_die("stream ended before its final event");
            }
            c.buf[c.len] = '\0';
            if (strstr(c.buf, "event: done") != NULL
                || strstr(c.buf, "event: error") != NULL)
            {
                break;
            }
            wl_check_deadline();
        }

        lat[k] = (wl_now() - t0) * 1e6;

        if (strstr(c.buf, "event: done") == NULL) {
            nbad++;
        }

        wl_disconnect(&c);
    }

    qsort(lat, wl_n, sizeof(double), wl_cmp_double);

    printf("{\"mode\":\"sse\",\"n\":%ld,\"p50_us\":%.1f,\"p90_us\":%.1f,"
           "\"p99_us\":%.1f,\"min_us\":%.1f,\"per_step_p50_us\":%.2f,"
           "\"not_complete\":%d}\n",
           wl_n, wl_pct(lat, wl_n, 0.5), wl_pct(lat, wl_n, 0.9),
           wl_pct(lat, wl_n, 0.99), lat[0], wl_pct(lat, wl_n, 0.5) / 5,
           nbad);

    free(c.buf);
    free(c.body);
    free(lat);
}


static void
wl_usage(void)
{
    fprintf(stderr,
            "usage: wfload -m throughput|latency|sse [-p PORT] [-n N]"
            " [-c CONC] [-w WORKFLOW] [-P PID,PID] [-t SECONDS]\n");
    exit(1);
}


int
main(int argc, char **argv)
{
    int          opt;
    char        *p, *mode;
    double       timeout;

    mode = NULL;
    timeout = 120;

    while ((opt = getopt(argc, argv, "m:p:n:c:w:P:t:")) != -1) {
        switch (opt) {
        case 'm':
            mode = optarg;
            break;
        case 'p':
            wl_port = atoi(optarg);
            break;
        case 'n':
            wl_n = atol(optarg);
            break;
        case 'c':
            wl_conc = atoi(optarg);
            break;
        case 'w':
            wl_workflow = optarg;
            break;
        case 'P':
            for (p = strtok(optarg, ","); p && wl_npids < WL_MAX_PIDS;
                 p = strtok(NULL, ","))
            {
                wl_pids[wl_npids++] = atoi(p);
            }
            break;
        case 't':
            timeout = atof(optarg);
            break;
        default:
            wl_usage();
        }
    }

    if (mode == NULL || wl_n < 1 || wl_conc < 1) {
        wl_usage();
    }

    wl_body_len = snprintf(wl_body, sizeof(wl_body),
                           "{\"prompt\":\"bench\",\"workflow\":\"%s\"}",
                           wl_workflow);
    wl_deadline = wl_now() + timeout;

    if (strcmp(mode, "throughput") == 0) {
        wl_throughput();
    } else if (strcmp(mode, "latency") == 0) {
        wl_latency();
    } else if (strcmp(mode, "sse") == 0) {
        wl_sse();
    } else {
        wl_usage();
    }

    return 0;
}
