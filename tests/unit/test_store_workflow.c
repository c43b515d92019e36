/*
 * Copyright (C) Maestro authors
 */

/* unit tests of mst_store (LMDB): workflow records */

#include "mst_test_store.h"


/* ---- workflow records ------------------------------------------------- */


/* records 1..25: status by n % 3, user by n % 2, each with a "graph" */
static void
t_populate(mst_store_t *st)
{
    char         id[MST_ID_LEN + 1];
    unsigned     n;
    json_t      *rec;
    mst_txn_t   *txn;
    const char  *status;

    txn = t_begin(st, 0);

    for (n = 1; n <= 25; n++) {
        t_id(id, n, 0);

        status = (n % 3 == 0) ? "done" : (n % 3 == 1) ? "running" : "queued";

        rec = json_pack("{s:s,s:s,s:s,s:i,s:{s:[s,s,s]}}", "id", id,
                        "status", status, "user_id", n % 2 ? "u1" : "u0",
                        "n", (int) n, "graph", "nodes", "a", "b", "c");
        assert_non_null(rec);
        assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
        json_decref(rec);
    }

    /* a record without user_id or status */
    t_id(id, 26, 0);
    rec = json_pack("{s:i}", "n", 26);
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    json_decref(rec);

    assert_int_equal(mst_txn_commit(txn), MST_OK);
}


/*
 * Pages through wf_list with the filter, checks each page is newest first
 * and that the concatenation of pages is exactly want[0..nwant).
 */
static void
t_list_all(mst_store_t *st, mst_wf_filter_t *f, const unsigned *want,
    size_t nwant, size_t want_pages)
{
    char        cursor[MST_ID_LEN + 1], next[MST_ID_LEN + 1];
    size_t      got, pages, i;
    json_t     *items, *rec;
    mst_txn_t  *txn;

    got = 0;
    pages = 0;
    cursor[0] = '\0';

    txn = t_begin(st, 1);

    for ( ;; ) {
        f->cursor = cursor[0] ? cursor : NULL;

        assert_int_equal(mst_store_wf_list(txn, f, &items, next), MST_OK);
        assert_non_null(items);
        pages++;

        assert_true(json_array_size(items) <= f->limit);

        for (i = 0; i < json_array_size(items); i++) {
            rec = json_array_get(items, i);

            assert_true(got < nwant);
            assert_int_equal(json_integer_value(json_object_get(rec, "n")),
                             want[got]);
            assert_null(json_object_get(rec, "graph"));
            got++;
        }

        if (next[0] == '\0') {
            json_decref(items);
            break;
        }

        /* the cursor is the id of the last item returned */
        assert_int_equal(json_array_size(items), f->limit);
        assert_string_equal(next, json_string_value(json_object_get(
            json_array_get(items, f->limit - 1), "id")));

        memcpy(cursor, next, sizeof(cursor));
        json_decref(items);

        assert_true(pages < 100);
    }

    mst_txn_abort(txn);

    assert_int_equal(got, nwant);
    assert_int_equal(pages, want_pages);
}


static void
test_wf_roundtrip(void **state)
{
    char        id[MST_ID_LEN + 1], other[MST_ID_LEN + 1];
    json_t     *rec, *got, *bad;
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;

    mst_id_new(id);
    t_id(other, 1, 2);

    rec = json_pack("{s:s,s:s,s:{s:[i,i]},s:s,s:n}", "id", id,
                    "status", "queued", "graph", "x", 1, 2,
                    "prompt", "h\xc3\xa9llo \"q\"", "none");
    assert_non_null(rec);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);

    /* visible inside the same write transaction */
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    assert_true(json_equal(rec, got));
    json_decref(got);

    /* bad input */
    assert_int_equal(mst_store_wf_put(txn, "wf_nothex!", rec), MST_EINVAL);
    assert_int_equal(mst_store_wf_put(txn, NULL, rec), MST_EINVAL);
    bad = json_array();
    assert_int_equal(mst_store_wf_put(txn, other, bad), MST_EINVAL);
    json_decref(bad);

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    got = (json_t *) 1;
    assert_int_equal(mst_store_wf_get(txn, id, &got), MST_OK);
    assert_true(json_equal(rec, got));
    json_decref(got);

    /* unknown and invalid ids */
    got = (json_t *) 1;
    assert_int_equal(mst_store_wf_get(txn, other, &got), MST_NOTFOUND);
    assert_null(got);
    assert_int_equal(mst_store_wf_get(txn, "bogus", &got), MST_NOTFOUND);
    assert_int_equal(mst_store_wf_get(txn, "wf_0123456789abcdef0123X", &got),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_wf_get(txn, "wf_0123456789abcdef01234",
                                      &got),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_wf_get(txn, NULL, &got), MST_NOTFOUND);
    assert_null(got);

    /* writes in a read-only transaction */
    assert_int_equal(mst_store_wf_put(txn, other, rec), MST_EINVAL);

    mst_txn_abort(txn);

    /* an aborted write leaves nothing */
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_put(txn, other, rec), MST_OK);
    mst_txn_abort(txn);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_get(txn, other, &got), MST_NOTFOUND);
    mst_txn_abort(txn);

    json_decref(rec);
}


static void
test_wf_list(void **state)
{
    char             id[MST_ID_LEN + 1], next[MST_ID_LEN + 1];
    size_t           n;
    json_t          *items;
    t_env_t         *e;
    unsigned         want[32];
    mst_txn_t       *txn;
    mst_wf_filter_t  f;

    e = *state;

    t_populate(e->store);

    /* no filter: 26..1, pages of 7: 7 + 7 + 7 + 5 */
    for (n = 0; n < 26; n++) {
        want[n] = 26 - n;
    }

    memset(&f, 0, sizeof(f));
    f.limit = 7;
    t_list_all(e->store, &f, want, 26, 4);

    /* an exact multiple: the last full page has no next cursor */
    f.limit = 13;
    t_list_all(e->store, &f, want, 26, 2);

    f.limit = 1000;
    t_list_all(e->store, &f, want, 26, 1);

    /* status "done": 24, 21, ..., 3 (8 records), pages of 3 */
    for (n = 0; n < 8; n++) {
        want[n] = 24 - 3 * n;
    }

    memset(&f, 0, sizeof(f));
    f.status = "done";
    f.limit = 3;
    t_list_all(e->store, &f, want, 8, 3);

    f.limit = 4;
    t_list_all(e->store, &f, want, 8, 2);

    /* running and user u1: n % 3 == 1 and odd: 25, 19, 13, 7, 1 */
    want[0] = 25; want[1] = 19; want[2] = 13; want[3] = 7; want[4] = 1;

    memset(&f, 0, sizeof(f));
    f.status = "running";
    f.user_id = "u1";
    f.limit = 2;
    t_list_all(e->store, &f, want, 5, 3);

    /* user u0 only: even n 24..2 */
    for (n = 0; n < 12; n++) {
        want[n] = 24 - 2 * n;
    }

    memset(&f, 0, sizeof(f));
    f.user_id = "u0";
    f.limit = 5;
    t_list_all(e->store, &f, want, 12, 3);

    /* no match */
    memset(&f, 0, sizeof(f));
    f.status = "nonesuch";
    f.limit = 5;
    t_list_all(e->store, &f, want, 0, 1);

    txn = t_begin(e->store, 1);

    /* a cursor that is not a stored id: starts at the next older one */
    memset(&f, 0, sizeof(f));
    t_id(id, 10, 1);
    f.cursor = id;
    f.limit = 2;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(items, 0), "n")), 10);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(items, 1), "n")), 9);
    t_id(id, 9, 0);
    assert_string_equal(next, id);
    json_decref(items);

    /* a cursor newer than everything */
    t_id(id, 1000, 0);
    f.cursor = id;
    f.limit = 1;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(items, 0), "n")), 26);
    json_decref(items);

    /* a cursor older than everything */
    t_id(id, 1, 0);
    f.cursor = id;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 0);
    assert_string_equal(next, "");
    json_decref(items);

    /* bad input */
    f.cursor = NULL;
    f.limit = 0;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_EINVAL);
    assert_null(items);
    f.limit = 1001;
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_EINVAL);
    f.limit = 10;
    f.cursor = "not-an-id";
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_EINVAL);

    mst_txn_abort(txn);
}


static void
test_wf_list_empty(void **state)
{
    char             next[MST_ID_LEN + 1];
    json_t          *items;
    t_env_t         *e;
    mst_txn_t       *txn;
    mst_wf_filter_t  f;

    e = *state;

    memset(&f, 0, sizeof(f));
    f.limit = 10;
    next[0] = 'x';

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_list(txn, &f, &items, next), MST_OK);
    assert_int_equal(json_array_size(items), 0);
    assert_string_equal(next, "");
    json_decref(items);
    mst_txn_abort(txn);
}


typedef struct {
    unsigned  calls;
    unsigned  stop_after;
    unsigned  seen[32];
    int       bad;
} t_scan_t;


static int
t_scan_cb(const char *id, json_t *rec, void *arg)
{
    const char  *status;
    t_scan_t    *s;
    json_int_t   n;

    s = arg;

    status = json_string_value(json_object_get(rec, "status"));
    n = json_integer_value(json_object_get(rec, "n"));

    if (status == NULL
        || (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
        || strcmp(id, json_string_value(json_object_get(rec, "id"))) != 0
        || n < 1 || n > 31)
    {
        s->bad++;
    } else {
        s->seen[n]++;
    }

    s->calls++;

    return s->stop_after && s->calls == s->stop_after;
}


static void
test_wf_scan_active(void **state)
{
    unsigned    n;
    t_env_t    *e;
    t_scan_t    s;
    mst_txn_t  *txn;

    e = *state;

    t_populate(e->store);

    txn = t_begin(e->store, 1);

    memset(&s, 0, sizeof(s));
    assert_int_equal(mst_store_wf_scan_active(txn, t_scan_cb, &s), MST_OK);
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.calls, 17);      /* 25 - 8 done */

    for (n = 1; n <= 26; n++) {
        assert_int_equal(s.seen[n], (n <= 25 && n % 3 != 0) ? 1 : 0);
    }

    /* the callback stops the scan */
    memset(&s, 0, sizeof(s));
    s.stop_after = 3;
    assert_int_equal(mst_store_wf_scan_active(txn, t_scan_cb, &s), MST_OK);
    assert_int_equal(s.calls, 3);

    assert_int_equal(mst_store_wf_scan_active(txn, NULL, NULL), MST_EINVAL);

    mst_txn_abort(txn);
}


/* ---- delete ----------------------------------------------------------- */


static void
t_fill_wf(mst_txn_t *txn, const char *id)
{
    int      i;
    json_t  *rec;

    rec = json_pack("{s:s}", "status", "done");

    for (i = 1; i <= 3; i++) {
        t_cp_put(txn, id, (uint64_t) i);
    }

    for (i = 0; i < 4; i++) {
        assert_int_equal(mst_store_event_append(txn, id, rec, "e", NULL,
                                                NULL),
                         MST_OK);
    }

    assert_int_equal(mst_store_wf_put(txn, id, rec), MST_OK);
    json_decref(rec);
}


static void
test_wf_delete(void **state)
{
    char        a[MST_ID_LEN + 1], b[MST_ID_LEN + 1], z[MST_ID_LEN + 1];
    json_t     *rec, *list;
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;

    t_id(z, 7, 0);
    t_id(a, 8, 0);
    t_id(b, 8, 1);

    txn = t_begin(e->store, 0);
    t_fill_wf(txn, z);
    t_fill_wf(txn, a);
    t_fill_wf(txn, b);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_delete(txn, a), MST_OK);
    assert_int_equal(mst_store_wf_delete(txn, "bad"), MST_EINVAL);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    assert_int_equal(mst_store_wf_get(txn, a, &rec), MST_NOTFOUND);
    t_cp_last(txn, a, MST_NOTFOUND, 0);
    assert_int_equal(mst_store_checkpoint_list(txn, a, &list), MST_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    t_range(txn, a, 0, 0, 0, 0, 0);

    /* the neighbours on both sides are intact */
    assert_int_equal(mst_store_wf_get(txn, b, &rec), MST_OK);
    assert_int_equal(json_integer_value(json_object_get(rec, "last_event_id")),
                     4);
    json_decref(rec);
    t_cp_last(txn, b, MST_OK, 3);
    t_range(txn, b, 0, 0, 0, 1, 4);
    t_cp_last(txn, z, MST_OK, 3);
    t_range(txn, z, 0, 0, 0, 1, 4);

    assert_int_equal(mst_store_wf_delete(txn, b), MST_EINVAL);

    mst_txn_abort(txn);

    /* deleting again: nothing left */
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_delete(txn, a), MST_NOTFOUND);
    mst_txn_abort(txn);
}


/* mst_store_wf_flag: "key":true in the record's text, never in a string */
static void
test_wf_flag(void **state)
{
    char        id[MST_ID_LEN + 1], other[MST_ID_LEN + 1];
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;
    t_id(id, 5, 5);
    t_id(other, 6, 6);

    t_put_rec(e->store, id, json_pack("{s:s, s:b, s:s}", "prompt",
                                      "say \"cancel_requested\":true",
                                      "cancel_requested", 0,
                                      "status", "running"));

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_flag(txn, id, "cancel_requested"), 0);
    assert_int_equal(mst_store_wf_flag(txn, other, "cancel_requested"),
                     MST_NOTFOUND);
    mst_txn_abort(txn);

    t_put_rec(e->store, id, json_pack("{s:s, s:b}", "prompt", "x",
                                      "cancel_requested", 1));

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_wf_flag(txn, id, "cancel_requested"), 1);
    assert_int_equal(mst_store_wf_flag(txn, id, "prompt"), 0);
    mst_txn_abort(txn);
}


/*
 * A workflow's parts (agents, prompt, graph): written, read one by one
 * and all of a kind, attached to the record as the API shows it (a
 * record holding its own agents keeps them), and deleted with the
 * workflow, the inline graph of before the parts (kv) too; a neighbour's
 * stay.
 */
static void
test_wf_parts(void **state)
{
    char        a[MST_ID_LEN + 1], b[MST_ID_LEN + 1];
    char       *text;
    size_t      len;
    json_t     *v, *rec, *all;
    t_env_t    *e;
    mst_txn_t  *txn;

    e = *state;
    t_id(a, 9, 0);
    t_id(b, 9, 1);

    txn = t_begin(e->store, 0);
    t_fill_wf(txn, a);
    t_fill_wf(txn, b);

    v = json_pack("{s:s}", "status", "idle");
    assert_int_equal(mst_store_part_put(txn, a, MST_PART_AGENT, "n1", v),
                     MST_OK);
    assert_int_equal(mst_store_part_put(txn, a, MST_PART_AGENT, "n2", v),
                     MST_OK);
    assert_int_equal(mst_store_part_put(txn, b, MST_PART_AGENT, "n1", v),
                     MST_OK);
    assert_int_equal(mst_store_part_put(txn, "bad", MST_PART_AGENT, "n", v),
                     MST_EINVAL);
    json_decref(v);

    v = json_string("a prompt");
    assert_int_equal(mst_store_part_put(txn, a, MST_PART_PROMPT, "", v),
                     MST_OK);
    json_decref(v);

    assert_int_equal(mst_store_kv_put(txn, "maestro.graphs", a, "{}", 2),
                     MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    assert_int_equal(mst_store_part_get(txn, a, MST_PART_AGENT, "n2", &v),
                     MST_OK);
    assert_string_equal(json_string_value(json_object_get(v, "status")),
                        "idle");
    json_decref(v);
    assert_int_equal(mst_store_part_get(txn, a, MST_PART_AGENT, "n3", &v),
                     MST_NOTFOUND);

    assert_int_equal(mst_store_part_all(txn, a, MST_PART_AGENT, &all),
                     MST_OK);
    assert_int_equal(json_object_size(all), 2);
    json_decref(all);

    /* the prompt is another kind: not among the agents */
    assert_int_equal(mst_store_part_all(txn, a, MST_PART_PROMPT, &all),
                     MST_OK);
    assert_int_equal(json_object_size(all), 1);
    json_decref(all);

    rec = json_object();
    assert_int_equal(mst_store_wf_attach(txn, a, rec), MST_OK);
    assert_int_equal(json_object_size(json_object_get(rec, "agents")), 2);
    assert_string_equal(json_string_value(json_object_get(rec, "prompt")),
                        "a prompt");
    json_decref(rec);

    /* a record of before the parts keeps its own */
    rec = json_pack("{s:{}, s:s}", "agents", "prompt", "its own");
    assert_int_equal(mst_store_wf_attach(txn, a, rec), MST_OK);
    assert_int_equal(json_object_size(json_object_get(rec, "agents")), 0);
    assert_string_equal(json_string_value(json_object_get(rec, "prompt")),
                        "its own");
    json_decref(rec);
    mst_txn_abort(txn);

    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_wf_delete(txn, a), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_part_all(txn, a, MST_PART_AGENT, &all),
                     MST_OK);
    assert_int_equal(json_object_size(all), 0);
    json_decref(all);
    assert_int_equal(mst_store_part_get(txn, a, MST_PART_PROMPT, "", &v),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_kv_get(txn, "maestro.graphs", a, &text, &len),
                     MST_NOTFOUND);
    assert_int_equal(mst_store_part_all(txn, b, MST_PART_AGENT, &all),
                     MST_OK);
    assert_int_equal(json_object_size(all), 1);
    json_decref(all);
    mst_txn_abort(txn);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_wf_roundtrip, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_list, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_list_empty, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_scan_active, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_delete, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_parts, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_wf_flag, t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
