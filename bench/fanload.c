/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * fanload: the load client of the fan-out benchmark (bench/fanout.mjs).
 * One thread, one epoll loop, non-blocking sockets to 127.0.0.1 only, so
 * 10,000 subscribers cost the client ~32 bytes of state each and about one
 * read() per delivered batch; it prints JSON lines on stdout.
 *
 *  1. reads the RSS of the server workers (-P), opens -n subscribers
 *     (SSE: GET with Accept: text/event-stream, HTTP/1.1, chunked bodies
 *     decoded; WS: an RFC 6455 upgrade, unmasked server frames decoded),
 *     at most 256 connects in flight; subscriber k uses line k % lines of
 *     the -f file (request paths);
 *  2. waits -s ms with every subscriber idle, reads the RSS again
 *     (memory per idle connection = delta / subscribers) and prints
 *     {"phase":"ready",...};
 *  3. with --pub-port, publishes itself: --pub-chans channels, --pub-rate
 *     messages/s each, for --pub-secs, by HTTP POST on --pub-conns
 *     keep-alive connections, a JSON payload of --pub-size bytes whose
 *     last field is "ts" (ms since the epoch, taken when the POST is
 *     written); without it the events come from elsewhere (Maestro);
 *  4. a delivery is one "ts":<digits> in a subscriber's stream (every
 *     Maestro event and every published message has exactly one); latency
 *     = receipt (CLOCK_REALTIME) - ts. The window opens -w ms after the
 *     first delivery and lasts -W ms: deliveries, latency histogram,
 *     server CPU (utime+stime of the workers from /proc/PID/stat) and the
 *     client's CPU (getrusage) are taken over it;
 *  5. drains until no delivery for -d ms (and publishing is over), reads
 *     the RSS once more, prints the result line and closes every socket
 *     with a RST (no TIME_WAIT left behind).
 *
 * A deadline (-t seconds) bounds everything: past it the client prints
 * what it has with "error" set and exits 2.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>


#define FL_MAX_PIDS      16
#define FL_MAX_INFLIGHT  256
#define FL_HIST_STEP_US  100                 /* histogram resolution */
#define FL_HIST_LEN      (600000)            /* 60 s */
#define FL_PUB_MAX       64
#define FL_PUB_BUF       4096

/* subscriber states */
#define FL_ST_IDLE       0
#define FL_ST_CONNECTING 1
#define FL_ST_HEADERS    2
#define FL_ST_BODY       3
#define FL_ST_DONE       4

/* body framing states: chunked (SSE) and WebSocket frames */
#define FL_F_RAW         0
#define FL_CH_SIZE       1
#define FL_CH_EXT        2
#define FL_CH_SIZE_LF    3
#define FL_CH_DATA       4
#define FL_CH_DATA_CR    5
#define FL_CH_DATA_LF    6
#define FL_CH_END        7
#define FL_WS_H0         8
#define FL_WS_H1         9
#define FL_WS_LEN        10
#define FL_WS_PAY        11


typedef struct {
    int32_t    fd;
    uint32_t   count;       /* deliveries since ready */
    uint64_t   ts;          /* digits of "ts" being read */
    uint32_t   rem;         /* chunk / frame payload bytes left */
    uint8_t    st;
    uint8_t    fst;         /* framing state */
    uint8_t    ms;          /* "ts": matched chars; 5 = in the digits */
    uint8_t    op;          /* WS opcode of the frame being read */
    uint8_t    lenb;        /* WS extended length bytes left */
    uint8_t    pad[3];
} fl_conn_t;


typedef struct {
    int        fd;
    int        busy;
    size_t     len;
    char       buf[FL_PUB_BUF];
} fl_pub_t;


static const char  *fl_mode = "sse";
static int          fl_port;
static long         fl_n = 1000;
static const char  *fl_file;
static int          fl_npids;
static int          fl_pids[FL_MAX_PIDS];
static long         fl_settle_ms = 1000;
static long         fl_warm_ms = 1000;
static long         fl_win_ms = 6000;
static long         fl_drain_ms = 1500;
static double       fl_timeout_s = 120;
static long         fl_first_timeout_ms = 60000;

static int          fl_pub_port;
static long         fl_pub_chans = 1;
static double       fl_pub_rate = 50;
static double       fl_pub_secs = 9;
static long         fl_pub_size = 250;
static int          fl_pub_nconns = 4;
static const char  *fl_pub_prefix = "/pub/c";

static char       **fl_paths;
static long         fl_npaths;
static fl_conn_t   *fl_conns;
static int          fl_ep;
static char         fl_rbuf[256 * 1024];
static uint32_t    *fl_hist;
static double       fl_t0;
static int          fl_ws;
static int          fl_ready;
static int          fl_in_window;

/* counters */
static long         fl_connected, fl_failed, fl_inflight, fl_next;
static long         fl_eof, fl_bad_status, fl_closes;
static long         fl_pre_ready;
static long long    fl_total, fl_win_count;
static double       fl_first_at;            /* first delivery after ready */
static double       fl_last_at;
static char         fl_err[256];
static char         fl_first_bad[128];

/* publisher */
static fl_pub_t     fl_pubs[FL_PUB_MAX];
static double       fl_pub_start;
static double       fl_pub_last;            /* the last POST written */
static long long    fl_pub_sent, fl_pub_ok, fl_pub_errs, fl_pub_total;
static char        *fl_pub_body;
static int          fl_pub_ts_off;


static double
fl_mono(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static uint64_t
fl_real_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static double
fl_cpu_self_ms(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}


/* utime + stime of one worker, all threads, in ms */
static double
fl_cpu_pid_ms(int pid)
{
    char    path[64], line[2048], *p;
    FILE   *f;
    double  ms;
    unsigned long long  ut, st;

    ms = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }

    if (fgets(line, sizeof(line), f) != NULL) {
        /* fields after "(comm)": state is field 3, utime 14, stime 15 */
        p = strrchr(line, ')');
        if (p != NULL
            && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u"
                      " %*u %llu %llu", &ut, &st) == 2)
        {
            ms = (ut + st) * 1e3 / sysconf(_SC_CLK_TCK);
        }
    }

    fclose(f);

    return ms;
}


/* the same, summed over the workers; per worker into each[] if not NULL */
static double
fl_cpu_server_ms(double *each)
{
    int     i;
    double  total, v;

    total = 0;

    for (i = 0; i < fl_npids; i++) {
        v = fl_cpu_pid_ms(fl_pids[i]);
        if (each != NULL) {
            each[i] = v;
        }
        total += v;
    }

    return total;
}


/* a /proc/PID/status field (kB) */
static long
fl_status_kb(int pid, const char *field)
{
    long    v;
    size_t  flen;
    char    path[64], line[256];
    FILE   *f;

    v = 0;
    flen = strlen(field);

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            v = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }

    fclose(f);

    return v;
}


/* the same, summed over the workers; per worker into each[] if not NULL */
static long
fl_rss_kb(const char *field, long *each)
{
    int   i;
    long  total, v;

    total = 0;

    for (i = 0; i < fl_npids; i++) {
        v = fl_status_kb(fl_pids[i], field);
        if (each != NULL) {
            each[i] = v;
        }
        total += v;
    }

    return total;
}


/* "[a,b,...]" of per-worker values */
static const char *
fl_list(char *buf, size_t size, const double *v)
{
    int     i;
    size_t  n;

    n = snprintf(buf, size, "[");

    for (i = 0; i < fl_npids && n < size; i++) {
        n += snprintf(buf + n, size - n, "%s%.1f", i ? "," : "", v[i]);
    }

    if (n < size) {
        snprintf(buf + n, size - n, "]");
    }

    return buf;
}


static void
fl_error(const char *fmt, ...)
{
    va_list  args;

    if (fl_err[0]) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(fl_err, sizeof(fl_err), fmt, args);
    va_end(args);
}


static void
fl_die(const char *fmt, ...)
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


/* ---- subscribers ------------------------------------------------------ */


static void
fl_close(fl_conn_t *c, int rst)
{
    struct linger  lg;

    if (c->fd < 0) {
        return;
    }

    if (rst) {
        lg.l_onoff = 1;
        lg.l_linger = 0;
        (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }

    (void) epoll_ctl(fl_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->st = FL_ST_DONE;
}


static int
fl_connect_one(long i)
{
    int                 fd, one;
    fl_conn_t          *c;
    struct sockaddr_in  sa;
    struct epoll_event  ev;

    c = &fl_conns[i];

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fl_error("socket(): %s (subscriber %ld)", strerror(errno), i);
        return -1;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(fl_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0
        && errno != EINPROGRESS)
    {
        fl_error("connect(): %s (subscriber %ld)", strerror(errno), i);
        close(fd);
        return -1;
    }

    c->fd = fd;
    c->st = FL_ST_CONNECTING;

    ev.events = EPOLLOUT;
    ev.data.u64 = (uint64_t) i;

    if (epoll_ctl(fl_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        fl_error("epoll_ctl(): %s", strerror(errno));
        close(fd);
        c->fd = -1;
        return -1;
    }

    fl_inflight++;

    return 0;
}


static void
fl_send_request(long i)
{
    int                 err;
    char                req[1024];
    size_t              len;
    ssize_t             n;
    socklen_t           sl;
    fl_conn_t          *c;
    const char         *path;
    struct epoll_event  ev;

    c = &fl_conns[i];
    path = fl_paths[i % fl_npaths];

    err = 0;
    sl = sizeof(err);
    (void) getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);

    if (err != 0) {
        fl_error("connect: %s (subscriber %ld)", strerror(err), i);
        goto failed;
    }

    if (fl_ws) {
        len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n", path);
    } else {
        len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Accept: text/event-stream\r\n"
                       "Cache-Control: no-cache\r\n\r\n", path);
    }

    n = write(c->fd, req, len);
    if (n != (ssize_t) len) {
        fl_error("write request: %s (subscriber %ld)",
                 n < 0 ? strerror(errno) : "short", i);
        goto failed;
    }

    c->st = FL_ST_HEADERS;

    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t) i;
    (void) epoll_ctl(fl_ep, EPOLL_CTL_MOD, c->fd, &ev);

    return;

failed:

    fl_close(c, 1);
    fl_inflight--;
    fl_failed++;
}


static void
fl_deliver(fl_conn_t *c, uint64_t ts_ms, uint64_t now_us)
{
    int64_t   lat;
    uint64_t  b;

    if (!fl_ready) {
        fl_pre_ready++;
        return;
    }

    c->count++;
    fl_total++;

    if (fl_first_at == 0) {
        fl_first_at = fl_mono();
    }

    if (fl_in_window) {
        lat = (int64_t) now_us - (int64_t) (ts_ms * 1000);
        if (lat < 0) {
            lat = 0;
        }
        b = (uint64_t) lat / FL_HIST_STEP_US;
        if (b >= FL_HIST_LEN) {
            b = FL_HIST_LEN - 1;
        }
        fl_hist[b]++;
        fl_win_count++;
    }
}


/* the "ts":<digits> scanner over payload bytes */
static void
fl_scan(fl_conn_t *c, const char *p, size_t n, uint64_t now_us)
{
    static const char  pat[] = "\"ts\":";

    const char  *end, *q;
    char         ch;

    end = p + n;

    while (p < end) {

        if (c->ms == 0) {
            q = memchr(p, '"', end - p);
            if (q == NULL) {
                return;
            }
            p = q + 1;
            c->ms = 1;
            continue;
        }

        ch = *p;

        if (c->ms < 5) {
            if (ch == pat[c->ms]) {
                c->ms++;
                c->ts = 0;
            } else {
                c->ms = (ch == '"') ? 1 : 0;
            }
            p++;
            continue;
        }

        /* in the digits */
        if (ch >= '0' && ch <= '9') {
            c->ts = c->ts * 10 + (uint64_t) (ch - '0');
            p++;
            continue;
        }

        if (c->ts != 0) {
            fl_deliver(c, c->ts, now_us);
        }
        c->ms = 0;              /* ch is re-read: it may start a pattern */
    }
}


/* body bytes through the framing (chunked or WebSocket) to the scanner */
static void
fl_body(fl_conn_t *c, const char *p, size_t n, uint64_t now_us)
{
    size_t       k;
    const char  *end;
    char         ch;

    end = p + n;

    while (p < end) {

        switch (c->fst) {

        case FL_F_RAW:
            fl_scan(c, p, end - p, now_us);
            return;

        case FL_CH_SIZE:
            ch = *p++;
            if (ch >= '0' && ch <= '9') {
                c->rem = c->rem * 16 + (ch - '0');
            } else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') {
                c->rem = c->rem * 16 + ((ch | 0x20) - 'a' + 10);
            } else if (ch == '\r') {
                c->fst = FL_CH_SIZE_LF;
            } else {
                c->fst = FL_CH_EXT;
            }
            break;

        case FL_CH_EXT:
            if (*p++ == '\r') {
                c->fst = FL_CH_SIZE_LF;
            }
            break;

        case FL_CH_SIZE_LF:
            p++;
            c->fst = c->rem ? FL_CH_DATA : FL_CH_END;
            break;

        case FL_CH_DATA:
            k = (size_t) (end - p) < c->rem ? (size_t) (end - p) : c->rem;
            fl_scan(c, p, k, now_us);
            p += k;
            c->rem -= k;
            if (c->rem == 0) {
                c->fst = FL_CH_DATA_CR;
            }
            break;

        case FL_CH_DATA_CR:
            p++;
            c->fst = FL_CH_DATA_LF;
            break;

        case FL_CH_DATA_LF:
            p++;
            c->fst = FL_CH_SIZE;
            c->rem = 0;
            break;

        case FL_CH_END:
            return;             /* the stream ended; the trailer is ignored */

        case FL_WS_H0:
            c->op = (uint8_t) (*p++ & 0x0f);
            c->fst = FL_WS_H1;
            break;

        case FL_WS_H1:
            ch = *p++ & 0x7f;
            if (ch == 126 || ch == 127) {
                c->lenb = ch == 126 ? 2 : 8;
                c->rem = 0;
                c->fst = FL_WS_LEN;
            } else {
                c->rem = (uint8_t) ch;
                c->fst = c->rem ? FL_WS_PAY : FL_WS_H0;
            }
            if (c->op == 8) {
                fl_closes++;
            }
            break;

        case FL_WS_LEN:
            c->rem = (c->rem << 8) | (uint8_t) *p++;
            if (--c->lenb == 0) {
                c->fst = c->rem ? FL_WS_PAY : FL_WS_H0;
            }
            break;

        case FL_WS_PAY:
            k = (size_t) (end - p) < c->rem ? (size_t) (end - p) : c->rem;
            if (c->op <= 2) {
                fl_scan(c, p, k, now_us);
            }
            p += k;
            c->rem -= k;
            if (c->rem == 0) {
                c->fst = FL_WS_H0;
            }
            break;
        }
    }
}


static void
fl_read(long i)
{
    char        *h, *e;
    ssize_t      n;
    uint64_t     now_us;
    fl_conn_t   *c;

    c = &fl_conns[i];

    n = read(c->fd, fl_rbuf, sizeof(fl_rbuf) - 1);

    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (c->st == FL_ST_HEADERS) {
            fl_inflight--;
            fl_failed++;
            fl_error("subscriber %ld: closed before the response", i);
        } else {
            fl_eof++;
        }
        fl_close(c, 0);
        return;
    }

    now_us = fl_real_us();

    if (c->st == FL_ST_BODY) {
        fl_body(c, fl_rbuf, n, now_us);
        return;
    }

    /* the response head, all in the first read (loopback) */
    fl_rbuf[n] = '\0';
    fl_inflight--;

    e = strstr(fl_rbuf, "\r\n\r\n");

    if (e == NULL
        || strncmp(fl_rbuf, fl_ws ? "HTTP/1.1 101" : "HTTP/1.1 200", 12)
           != 0)
    {
        if (fl_first_bad[0] == '\0') {
            snprintf(fl_first_bad, sizeof(fl_first_bad), "%.*s",
                     (int) strcspn(fl_rbuf, "\r\n"), fl_rbuf);
        }
        fl_bad_status++;
        fl_failed++;
        fl_close(c, 1);
        return;
    }

    fl_connected++;
    c->st = FL_ST_BODY;

    *e = '\0';

    if (fl_ws) {
        c->fst = FL_WS_H0;
    } else {
        for (h = fl_rbuf; *h; h++) {
            *h = (char) (*h | ((*h >= 'A' && *h <= 'Z') ? 0x20 : 0));
        }
        c->fst = strstr(fl_rbuf, "transfer-encoding: chunked")
                 ? FL_CH_SIZE : FL_F_RAW;
        c->rem = 0;
    }

    e += 4;

    if (e < fl_rbuf + n) {
        fl_body(c, e, fl_rbuf + n - e, now_us);
    }
}


/* ---- publisher (nchan) ------------------------------------------------ */


static void
fl_pub_init(void)
{
    int                 i, fd, one;
    long                len;
    struct sockaddr_in  sa;
    struct epoll_event  ev;
    const char         *head, *tail;

    /* {"id":..., "pad":"xxx...","ts":1234567890123} of --pub-size bytes */
    head = "{\"id\":\"emit\",\"name\":\"emit\",\"agent\":\"sleep\","
           "\"status\":\"executing\",\"progress\":42,"
           "\"current_task\":\"sleeping\",\"metrics\":{\"tokens\":0,"
           "\"execution_ms\":0,\"memory_bytes\":0},\"attempts\":1,"
           "\"pad\":\"";
    tail = "\",\"ts\":";

    len = (long) (strlen(head) + strlen(tail) + 13 + 1);
    if (fl_pub_size < len) {
        fl_pub_size = len;
    }

    fl_pub_body = malloc(fl_pub_size + 1);
    if (fl_pub_body == NULL) {
        fl_die("out of memory");
    }

    len = sprintf(fl_pub_body, "%s", head);
    memset(fl_pub_body + len, 'x',
           fl_pub_size - len - strlen(tail) - 13 - 1);
    len = fl_pub_size - strlen(tail) - 13 - 1;
    len += sprintf(fl_pub_body + len, "%s", tail);
    fl_pub_ts_off = (int) len;
    sprintf(fl_pub_body + len, "0000000000000}");

    for (i = 0; i < fl_pub_nconns; i++) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            fl_die("publisher socket(): %s", strerror(errno));
        }

        one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons(fl_pub_port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
            fl_die("publisher connect(): %s", strerror(errno));
        }

        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

        fl_pubs[i].fd = fd;
        fl_pubs[i].busy = 0;
        fl_pubs[i].len = 0;

        ev.events = EPOLLIN;
        ev.data.u64 = (1ULL << 40) | (uint64_t) i;
        (void) epoll_ctl(fl_ep, EPOLL_CTL_ADD, fd, &ev);
    }

    fl_pub_total = (long long) (fl_pub_chans * fl_pub_rate * fl_pub_secs);
    fl_pub_start = fl_mono();
}


static void
fl_pub_send(fl_pub_t *pc)
{
    char      req[512], ts[24];
    long      chan;
    size_t    len;
    ssize_t   n;
    uint64_t  now_ms;
    struct iovec  iov[2];

    chan = (long) (fl_pub_sent % fl_pub_chans);

    now_ms = fl_real_us() / 1000;
    snprintf(ts, sizeof(ts), "%013llu", (unsigned long long) now_ms);
    memcpy(fl_pub_body + fl_pub_ts_off, ts, 13);

    len = snprintf(req, sizeof(req),
                   "POST %s%ld HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %ld\r\n\r\n",
                   fl_pub_prefix, chan, fl_pub_size);

    iov[0].iov_base = req;
    iov[0].iov_len = len;
    iov[1].iov_base = fl_pub_body;
    iov[1].iov_len = fl_pub_size;

    n = writev(pc->fd, iov, 2);
    if (n != (ssize_t) (len + fl_pub_size)) {
        fl_error("publisher write: %s", n < 0 ? strerror(errno) : "short");
        fl_pub_errs++;
        return;
    }

    pc->busy = 1;
    pc->len = 0;
    fl_pub_sent++;
    fl_pub_last = fl_mono();
}


static void
fl_pub_read(fl_pub_t *pc)
{
    char     *e, *cl;
    long      blen;
    ssize_t   n;

    n = read(pc->fd, pc->buf + pc->len, FL_PUB_BUF - 1 - pc->len);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        fl_error("publisher connection closed by the server");
        (void) epoll_ctl(fl_ep, EPOLL_CTL_DEL, pc->fd, NULL);
        close(pc->fd);
        pc->fd = -1;
        pc->busy = 1;
        return;
    }

    pc->len += n;
    pc->buf[pc->len] = '\0';

    e = strstr(pc->buf, "\r\n\r\n");
    if (e == NULL) {
        return;
    }

    cl = strcasestr(pc->buf, "\r\ncontent-length:");
    blen = cl ? strtol(cl + 17, NULL, 10) : 0;

    if ((long) (pc->buf + pc->len - (e + 4)) < blen) {
        return;
    }

    if (pc->buf[9] == '2') {
        fl_pub_ok++;
    } else {
        fl_pub_errs++;
        fl_error("publisher: %.*s", (int) strcspn(pc->buf, "\r\n"),
                 pc->buf);
    }

    pc->busy = 0;
    pc->len = 0;
}


static void
fl_pub_tick(void)
{
    int        i;
    double     t;
    long long  target;

    t = fl_mono() - fl_pub_start;
    target = (long long) (t * fl_pub_chans * fl_pub_rate) + 1;
    if (target > fl_pub_total) {
        target = fl_pub_total;
    }

    for (i = 0; i < fl_pub_nconns && fl_pub_sent < target; i++) {
        if (!fl_pubs[i].busy && fl_pubs[i].fd >= 0) {
            fl_pub_send(&fl_pubs[i]);
        }
    }
}


static int
fl_pub_done(void)
{
    int  i;

    if (fl_pub_port == 0) {
        return 1;
    }

    if (fl_pub_sent < fl_pub_total) {
        return 0;
    }

    for (i = 0; i < fl_pub_nconns; i++) {
        if (fl_pubs[i].busy && fl_pubs[i].fd >= 0) {
            return 0;
        }
    }

    return 1;
}


/* ---- the loop --------------------------------------------------------- */


static void
fl_poll(int timeout_ms)
{
    int                 i, n;
    long                k;
    uint64_t            d;
    struct epoll_event  evs[512];

    n = epoll_wait(fl_ep, evs, 512, timeout_ms);

    for (i = 0; i < n; i++) {
        d = evs[i].data.u64;

        if (d >> 40) {
            fl_pub_read(&fl_pubs[d & 0xff]);
            continue;
        }

        k = (long) d;

        if (fl_conns[k].st == FL_ST_CONNECTING) {
            fl_send_request(k);
        } else if (fl_conns[k].fd >= 0) {
            fl_read(k);
        }
    }

    if (fl_pub_port && fl_pub_start > 0 && fl_pub_sent < fl_pub_total) {
        fl_pub_tick();
    }
}


static void
fl_check_deadline(void)
{
    if (fl_mono() - fl_t0 > fl_timeout_s) {
        fl_error("deadline of %.0f s exceeded", fl_timeout_s);
    }
}


static double
fl_pct(double p)
{
    long long  want, acc;
    long       b;

    if (fl_win_count == 0) {
        return -1;
    }

    want = (long long) (p * fl_win_count);
    if (want >= fl_win_count) {
        want = fl_win_count - 1;
    }

    acc = 0;

    for (b = 0; b < FL_HIST_LEN; b++) {
        acc += fl_hist[b];
        if (acc > want) {
            return (b + 0.5) * FL_HIST_STEP_US / 1000.0;
        }
    }

    return -1;
}


static void
fl_load_paths(void)
{
    FILE    *f;
    char     line[2048];
    size_t   len;
    long     cap;

    f = fopen(fl_file, "r");
    if (f == NULL) {
        fl_die("%s: %s", fl_file, strerror(errno));
    }

    cap = 16;
    fl_paths = malloc(cap * sizeof(char *));

    while (fgets(line, sizeof(line), f) != NULL) {
        len = strcspn(line, "\r\n");
        if (len == 0) {
            continue;
        }
        line[len] = '\0';
        if (fl_npaths == cap) {
            cap *= 2;
            fl_paths = realloc(fl_paths, cap * sizeof(char *));
        }
        if (fl_paths == NULL) {
            fl_die("out of memory");
        }
        fl_paths[fl_npaths++] = strdup(line);
    }

    fclose(f);

    if (fl_npaths == 0) {
        fl_die("%s: no paths", fl_file);
    }
}


static void
fl_usage(void)
{
    fprintf(stderr,
        "usage: fanload -m sse|ws -p port -n subscribers -f paths.txt\n"
        "  [-P pid,pid] [-s settle_ms] [-w warm_ms] [-W window_ms]\n"
        "  [-d drain_ms] [-F first_event_timeout_ms] [-t timeout_s]\n"
        "  [--pub-port p --pub-chans n --pub-rate r --pub-secs s\n"
        "   --pub-size b --pub-conns k --pub-prefix /pub/c]\n");
    exit(1);
}


int
main(int argc, char **argv)
{
    int        i;
    char      *p, *a;
    long       k, cmin, cmax, rss0, rss1, rss2, anon0, anon1, anon2;
    long       rss0e[FL_MAX_PIDS], rss1e[FL_MAX_PIDS];
    double     cpu0e[FL_MAX_PIDS], cpu1e[FL_MAX_PIDS], dmem[FL_MAX_PIDS];
    double     dcpu[FL_MAX_PIDS];
    char       lmem[256], lcpu[256];
    double     now, t_conn, conn_ms, ready_at, win_start, win_end, last_n;
    double     cpu_s0, cpu_s1, cpu_c0, cpu_c1;
    long long  last_total;

    for (i = 1; i < argc; i++) {
        a = argv[i];
        if (i + 1 >= argc) {
            fl_usage();
        }
        p = argv[++i];

        if (strcmp(a, "-m") == 0) {
            fl_mode = p;
        } else if (strcmp(a, "-p") == 0) {
            fl_port = atoi(p);
        } else if (strcmp(a, "-n") == 0) {
            fl_n = atol(p);
        } else if (strcmp(a, "-f") == 0) {
            fl_file = p;
        } else if (strcmp(a, "-P") == 0) {
            for (a = strtok(p, ","); a && fl_npids < FL_MAX_PIDS;
                 a = strtok(NULL, ","))
            {
                fl_pids[fl_npids++] = atoi(a);
            }
        } else if (strcmp(a, "-s") == 0) {
            fl_settle_ms = atol(p);
        } else if (strcmp(a, "-w") == 0) {
            fl_warm_ms = atol(p);
        } else if (strcmp(a, "-W") == 0) {
            fl_win_ms = atol(p);
        } else if (strcmp(a, "-d") == 0) {
            fl_drain_ms = atol(p);
        } else if (strcmp(a, "-F") == 0) {
            fl_first_timeout_ms = atol(p);
        } else if (strcmp(a, "-t") == 0) {
            fl_timeout_s = atof(p);
        } else if (strcmp(a, "--pub-port") == 0) {
            fl_pub_port = atoi(p);
        } else if (strcmp(a, "--pub-chans") == 0) {
            fl_pub_chans = atol(p);
        } else if (strcmp(a, "--pub-rate") == 0) {
            fl_pub_rate = atof(p);
        } else if (strcmp(a, "--pub-secs") == 0) {
            fl_pub_secs = atof(p);
        } else if (strcmp(a, "--pub-size") == 0) {
            fl_pub_size = atol(p);
        } else if (strcmp(a, "--pub-conns") == 0) {
            fl_pub_nconns = atoi(p);
        } else if (strcmp(a, "--pub-prefix") == 0) {
            fl_pub_prefix = p;
        } else {
            fl_usage();
        }
    }

    if (fl_port == 0 || fl_file == NULL || fl_n <= 0
        || fl_pub_nconns < 1 || fl_pub_nconns > FL_PUB_MAX
        || fl_pub_chans < 1)
    {
        fl_usage();
    }

    fl_ws = strcmp(fl_mode, "ws") == 0;
    fl_load_paths();

    fl_conns = calloc(fl_n, sizeof(fl_conn_t));
    fl_hist = calloc(FL_HIST_LEN, sizeof(uint32_t));
    if (fl_conns == NULL || fl_hist == NULL) {
        fl_die("out of memory");
    }

    for (k = 0; k < fl_n; k++) {
        fl_conns[k].fd = -1;
    }

    fl_ep = epoll_create1(EPOLL_CLOEXEC);
    if (fl_ep < 0) {
        fl_die("epoll_create1(): %s", strerror(errno));
    }

    fl_t0 = fl_mono();

    /* 1. connect */

    rss0 = fl_rss_kb("VmRSS", rss0e);
    anon0 = fl_rss_kb("RssAnon", NULL);

    t_conn = fl_mono();

    while (fl_connected + fl_failed < fl_n && !fl_err[0]) {
        while (fl_next < fl_n && fl_inflight < FL_MAX_INFLIGHT) {
            if (fl_connect_one(fl_next++) != 0) {
                fl_failed++;
            }
        }
        fl_poll(10);
        fl_check_deadline();
    }

    conn_ms = (fl_mono() - t_conn) * 1e3;

    /* 2. settle, RSS of the idle subscribers */

    now = fl_mono();
    while (fl_mono() - now < fl_settle_ms / 1e3 && !fl_err[0]) {
        fl_poll(10);
    }

    rss1 = fl_rss_kb("VmRSS", rss1e);
    anon1 = fl_rss_kb("RssAnon", NULL);

    printf("{\"phase\":\"ready\",\"connected\":%ld,\"failed\":%ld,"
           "\"connect_ms\":%.1f,\"rss_before_kb\":%ld,\"rss_idle_kb\":%ld,"
           "\"anon_before_kb\":%ld,\"anon_idle_kb\":%ld,"
           "\"pre_ready_deliveries\":%ld%s%s%s}\n",
           fl_connected, fl_failed, conn_ms, rss0, rss1, anon0, anon1,
           fl_pre_ready, fl_err[0] ? ",\"error\":\"" : "",
           fl_err[0] ? fl_err : "", fl_err[0] ? "\"" : "");
    fflush(stdout);

    fl_ready = 1;
    ready_at = fl_mono();

    /* 3. publish (nchan), or wait for the server's own events */

    if (fl_pub_port && !fl_err[0]) {
        fl_pub_init();
    }

    cpu_s0 = cpu_s1 = cpu_c0 = cpu_c1 = 0;
    memset(cpu0e, 0, sizeof(cpu0e));
    memset(cpu1e, 0, sizeof(cpu1e));
    win_start = win_end = 0;
    last_total = 0;
    last_n = fl_mono();

    while (!fl_err[0]) {
        fl_poll(fl_pub_port && fl_pub_sent < fl_pub_total ? 1 : 10);
        fl_check_deadline();
        now = fl_mono();

        if (fl_first_at == 0) {
            if ((now - ready_at) * 1e3 > fl_first_timeout_ms) {
                fl_error("no event within %ld ms", fl_first_timeout_ms);
            }
            continue;
        }

        if (win_start == 0 && now >= fl_first_at + fl_warm_ms / 1e3) {
            win_start = now;
            cpu_s0 = fl_cpu_server_ms(cpu0e);
            cpu_c0 = fl_cpu_self_ms();
            fl_in_window = 1;
        }

        if (win_start != 0 && win_end == 0
            && now >= win_start + fl_win_ms / 1e3)
        {
            fl_in_window = 0;
            win_end = fl_mono();
            cpu_s1 = fl_cpu_server_ms(cpu1e);
            cpu_c1 = fl_cpu_self_ms();
        }

        if (fl_total != last_total) {
            last_total = fl_total;
            last_n = now;
        }

        if (win_end != 0 && fl_pub_done()
            && (now - last_n) * 1e3 >= fl_drain_ms)
        {
            break;
        }

        if (win_end == 0 && win_start == 0 && fl_pub_done()
            && (now - last_n) * 1e3 >= fl_drain_ms)
        {
            fl_error("events stopped before the window opened"
                     " (warm-up %ld ms too long?)", fl_warm_ms);
        }

        if (win_start != 0 && win_end == 0 && fl_pub_done()
            && (now - last_n) * 1e3 >= fl_drain_ms)
        {
            fl_error("events stopped inside the window"
                     " (the source ran shorter than warm-up + window)");
        }
    }

    fl_last_at = last_n;

    if (win_end == 0 && win_start != 0) {
        win_end = fl_mono();
        cpu_s1 = fl_cpu_server_ms(cpu1e);
        cpu_c1 = fl_cpu_self_ms();
    }

    rss2 = fl_rss_kb("VmRSS", NULL);
    anon2 = fl_rss_kb("RssAnon", NULL);

    for (i = 0; i < fl_npids; i++) {
        dmem[i] = rss1e[i] - rss0e[i];
        dcpu[i] = cpu1e[i] - cpu0e[i];
    }

    cmin = -1;
    cmax = 0;
    for (k = 0; k < fl_n; k++) {
        if (fl_conns[k].st != FL_ST_BODY && fl_conns[k].count == 0) {
            continue;
        }
        if (cmin < 0 || (long) fl_conns[k].count < cmin) {
            cmin = fl_conns[k].count;
        }
        if ((long) fl_conns[k].count > cmax) {
            cmax = fl_conns[k].count;
        }
    }

    printf("{\"phase\":\"result\",\"mode\":\"%s\",\"n\":%ld,"
           "\"connected\":%ld,\"failed\":%ld,\"bad_status\":%ld,"
           "\"first_bad\":\"%s\",\"connect_ms\":%.1f,"
           "\"rss_before_kb\":%ld,\"rss_idle_kb\":%ld,\"rss_end_kb\":%ld,"
           "\"anon_before_kb\":%ld,\"anon_idle_kb\":%ld,\"anon_end_kb\":%ld,"
           "\"pre_ready_deliveries\":%ld,"
           "\"first_event_after_ready_ms\":%.1f,"
           "\"window_ms\":%.1f,\"window_deliveries\":%lld,"
           "\"events_per_s\":%.1f,"
           "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"max_ms\":%.2f,"
           "\"server_cpu_ms\":%.1f,\"client_cpu_ms\":%.1f,"
           "\"worker_rss_idle_delta_kb\":%s,\"worker_cpu_ms\":%s,"
           "\"total_deliveries\":%lld,\"per_conn_min\":%ld,"
           "\"per_conn_max\":%ld,\"eof\":%ld,\"ws_closes\":%ld,"
           "\"source_ms\":%.1f,"
           "\"published\":%lld,\"pub_ok\":%lld,\"pub_errors\":%lld,"
           "\"pub_ms\":%.1f,"
           "\"pub_size\":%ld,\"error\":\"%s\"}\n",
           fl_mode, fl_n, fl_connected, fl_failed, fl_bad_status,
           fl_first_bad, conn_ms, rss0, rss1, rss2, anon0, anon1, anon2,
           fl_pre_ready,
           fl_first_at ? (fl_first_at - ready_at) * 1e3 : -1.0,
           (win_end - win_start) * 1e3, fl_win_count,
           win_end > win_start
               ? fl_win_count / (win_end - win_start) : 0.0,
           fl_pct(0.50), fl_pct(0.90), fl_pct(0.99), fl_pct(1.0),
           cpu_s1 - cpu_s0, cpu_c1 - cpu_c0,
           fl_list(lmem, sizeof(lmem), dmem), fl_list(lcpu, sizeof(lcpu), dcpu),
           fl_total, cmin, cmax, fl_eof, fl_closes,
           fl_first_at ? (fl_last_at - fl_first_at) * 1e3 : 0.0,
           fl_pub_sent, fl_pub_ok, fl_pub_errs,
           fl_pub_last > 0 ? (fl_pub_last - fl_pub_start) * 1e3 : 0.0,
           fl_pub_port ? fl_pub_size : 0, fl_err);
    fflush(stdout);

    for (k = 0; k < fl_n; k++) {
        fl_close(&fl_conns[k], 1);
    }

    for (i = 0; i < fl_pub_nconns; i++) {
        if (fl_pubs[i].fd > 0) {
            close(fl_pubs[i].fd);
        }
    }

    return fl_err[0] ? 2 : 0;
}
