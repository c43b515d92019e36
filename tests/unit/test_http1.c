/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_http1: heads and bodies as they come off a socket, in pieces of
 * every size (1 byte, a few, all at once), with the caller keeping the
 * bytes not yet used, as the event-loop client does.
 */

#include "mst_test.h"

#include "mst_http1.h"


typedef struct {
    char        fields[1024];
    size_t      nfields;
    char        body[4096];
    size_t      nbody;
    int         rc;         /* 0: done; -1: error; 1: wants more */
} tst_out_t;


static void
tst_field(void *arg, const char *line, size_t n)
{
    tst_out_t  *o = arg;

    assert_true(o->nfields + n < sizeof(o->fields));
    memcpy(o->fields + o->nfields, line, n);
    o->nfields += n;
    o->fields[o->nfields] = '\0';
}


/* feed text in pieces of `step` bytes; `eof`: the peer closes after */
static void
tst_feed(mst_http1_t *h, const char *text, size_t step, int eof,
    tst_out_t *o)
{
    char         buf[8192];
    size_t       have, total, off, n;
    ssize_t      used;
    const char  *data;

    memset(o, 0, sizeof(*o));
    mst_http1_init(h);

    total = strlen(text);
    have = 0;
    off = 0;

    for ( ;; ) {
        n = total - off < step ? total - off : step;
        memcpy(buf + have, text + off, n);
        have += n;
        off += n;

        for ( ;; ) {
            if (h->state == MST_HTTP1_HEAD) {
                used = mst_http1_head(h, buf, have, tst_field, o);
            } else {
                used = mst_http1_body(h, buf, have, &data, &n);
                if (used > 0 && n > 0) {
                    assert_true(o->nbody + n < sizeof(o->body));
                    memcpy(o->body + o->nbody, data, n);
                    o->nbody += n;
                    o->body[o->nbody] = '\0';
                }
            }

            if (used < 0) {
                o->rc = -1;
                return;
            }
            if (used == 0) {
                break;
            }

            memmove(buf, buf + used, have - (size_t) used);
            have -= (size_t) used;

            if (h->state == MST_HTTP1_DONE) {
                o->rc = 0;
                return;
            }
        }

        if (off == total) {
            break;
        }
    }

    if (eof && mst_http1_eof(h)) {
        o->rc = 0;
        return;
    }

    o->rc = 1;
}


static const size_t  tst_steps[] = { 1, 2, 3, 7, 64, 100000 };


static void
test_content_length(void **state)
{
    size_t       i;
    mst_http1_t  h;
    tst_out_t    o;

    for (i = 0; i < sizeof(tst_steps) / sizeof(tst_steps[0]); i++) {
        tst_feed(&h, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Content-Length: 13\r\nRetry-After: 3\r\n\r\n"
                 "{\"a\":\"hello\"}", tst_steps[i], 0, &o);

        assert_int_equal(o.rc, 0);
        assert_int_equal(h.status, 200);
        assert_string_equal(o.body, "{\"a\":\"hello\"}");
        assert_string_equal(o.fields, "Content-Type: application/json\r\n"
                            "Content-Length: 13\r\nRetry-After: 3\r\n");
        assert_true(mst_http1_reusable(&h));
    }

    /* fewer bytes than promised: not done, and EOF does not end it */
    tst_feed(&h, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 5, 1,
             &o);
    assert_int_equal(o.rc, 1);
    assert_int_equal(h.state, MST_HTTP1_LENGTH);

    /* zero length, and bare LF line ends */
    tst_feed(&h, "HTTP/1.1 429 Too Many\nContent-Length: 0\n\n", 4, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(h.status, 429);
    assert_int_equal(o.nbody, 0);
}


static void
test_chunked(void **state)
{
    size_t       i;
    mst_http1_t  h;
    tst_out_t    o;

    for (i = 0; i < sizeof(tst_steps) / sizeof(tst_steps[0]); i++) {
        tst_feed(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Type: text/event-stream\r\n\r\n"
                 "5\r\ndata:\r\n"
                 "1A;name=val\r\n abcdefghijklmnopqrstuvwxy\r\n"
                 "0\r\nX-Trailer: 1\r\n\r\n", tst_steps[i], 0, &o);

        assert_int_equal(o.rc, 0);
        assert_string_equal(o.body, "data: abcdefghijklmnopqrstuvwxy");
        assert_true(mst_http1_reusable(&h));
    }

    /* a stream cut between chunks: never done */
    tst_feed(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n", 2, 1, &o);
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.body, "abc");

    /* bad size, missing CRLF after data */
    tst_feed(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "zz\r\nabc\r\n", 3, 0, &o);
    assert_int_equal(o.rc, -1);
    tst_feed(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabcX\r\n0\r\n\r\n", 100, 0, &o);
    assert_int_equal(o.rc, -1);

    /* a chunk size line that never ends */
    {
        static char  big[6000];

        strcpy(big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1");
        memset(big + strlen(big), ';', 5000);
        tst_feed(&h, big, 100000, 0, &o);
        assert_int_equal(o.rc, -1);
    }
}


static void
test_framing(void **state)
{
    mst_http1_t  h;
    tst_out_t    o;

    /* neither length nor chunked: the body ends with the connection */
    tst_feed(&h, "HTTP/1.1 200 OK\r\n\r\nall of it", 3, 1, &o);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.body, "all of it");
    assert_false(mst_http1_reusable(&h));

    /* interim 100 Continue is skipped, its fields are not reported */
    tst_feed(&h, "HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n"
             "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 1, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(h.status, 201);
    assert_string_equal(o.fields, "Content-Length: 2\r\n");

    /* 204: no body even with nothing said */
    tst_feed(&h, "HTTP/1.1 204 No Content\r\n\r\n", 5, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_true(mst_http1_reusable(&h));

    /* Connection: close, and HTTP/1.0 without keep-alive */
    tst_feed(&h, "HTTP/1.1 200 OK\r\nConnection: close\r\n"
             "Content-Length: 1\r\n\r\nx", 100, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_false(mst_http1_reusable(&h));
    tst_feed(&h, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 100, 0,
             &o);
    assert_false(mst_http1_reusable(&h));
    tst_feed(&h, "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
             "Content-Length: 1\r\n\r\nx", 100, 0, &o);
    assert_true(mst_http1_reusable(&h));
}


static void
test_refused(void **state)
{
    size_t       i;
    mst_http1_t  h;
    tst_out_t    o;

    static const char  *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tst_feed(&h, bad[i], 100, 0, &o);
        assert_int_equal(o.rc, -1);
        assert_non_null(h.error);
    }

    /* the same length twice is one length */
    tst_feed(&h, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
             "Content-Length: 1\r\n\r\nx", 100, 0, &o);
    assert_int_equal(o.rc, 0);

    /* a head that has not ended wants more, whatever comes */
    tst_feed(&h, "HTTP/1.1 200 OK\r\nContent-Le", 3, 1, &o);
    assert_int_equal(o.rc, 1);
    assert_int_equal(h.state, MST_HTTP1_HEAD);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
