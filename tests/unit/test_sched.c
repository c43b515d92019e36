/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_sched, the fair share of a worker's step slots: round robin between
 * workflows, weights, the slot limit, dropping a flow;
 * and the runner's cap on a workflow's steps begun at once (the others
 * stay pending in the checkpoint, and a crash resumes them).
 */

#include "mst_test_run.h"
#include "mst_sched.h"


typedef struct {
    mst_sched_item_t   item;        /* first: items are cast back */
    int                flow;
    int                n;
} tst_step_t;


static void
tst_push(mst_sched_t *s, mst_sched_flow_t *f, tst_step_t *steps, int flow,
    int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        steps[i].flow = flow;
        steps[i].n = i;
        mst_sched_push(s, f, &steps[i].item);
    }
}


/* the flow of the next step started, then done at once; -1: none */
static int
tst_take(mst_sched_t *s, int done)
{
    tst_step_t        *st;
    mst_sched_flow_t  *f;

    st = (tst_step_t *) mst_sched_next(s, &f);
    if (st == NULL) {
        return -1;
    }

    if (done) {
        mst_sched_done(s, f);
    }

    return st->flow;
}


static void
test_sched_round_robin(void **state)
{
    int               i, big;
    mst_sched_t       s;
    tst_step_t        wide[100], a[3], b[3];
    mst_sched_flow_t  fw, fa, fb;

    mst_sched_init(&s, 4);
    mst_sched_flow_init(&fw, 1);
    mst_sched_flow_init(&fa, 1);
    mst_sched_flow_init(&fb, 1);

    /* a fan-out first, then two short ones: they alternate at once */
    tst_push(&s, &fw, wide, 0, 100);
    tst_push(&s, &fa, a, 1, 3);
    tst_push(&s, &fb, b, 2, 3);
    assert_true(mst_sched_contended(&s));

    for (i = 0; i < 3; i++) {
        assert_int_equal(tst_take(&s, 1), 0);
        assert_int_equal(tst_take(&s, 1), 1);
        assert_int_equal(tst_take(&s, 1), 2);
    }

    /* then the fan-out alone, in its own order */
    for (i = 3; i < 100; i++) {
        tst_step_t        *st;
        mst_sched_flow_t  *f;

        st = (tst_step_t *) mst_sched_next(&s, &f);
        assert_non_null(st);
        assert_ptr_equal(f, &fw);
        assert_int_equal(st->n, i);
        mst_sched_done(&s, f);
    }

    assert_int_equal(tst_take(&s, 1), -1);
    assert_false(mst_sched_contended(&s));
    assert_int_equal(s.running, 0);
    assert_int_equal(s.queued, 0);

    /* a sequence that comes back (one step at a time) waits one turn */
    tst_push(&s, &fw, wide, 0, 50);
    big = 0;

    for (i = 0; i < 3; i++) {
        tst_push(&s, &fa, &a[i], 1, 1);
        while (tst_take(&s, 1) == 0) {
            big++;
        }
    }

    assert_true(big <= 3);
    mst_sched_flow_drop(&s, &fw);
}


static void
test_sched_slots(void **state)
{
    int                i;
    mst_sched_t        s;
    tst_step_t         wide[10], a[1];
    mst_sched_flow_t   fw, fa, *f;
    mst_sched_item_t  *it;

    mst_sched_init(&s, 3);
    mst_sched_flow_init(&fw, 1);
    mst_sched_flow_init(&fa, 1);

    tst_push(&s, &fw, wide, 0, 10);

    /* three slots: the fourth waits for a done */
    for (i = 0; i < 3; i++) {
        assert_int_equal(tst_take(&s, 0), 0);
    }
    assert_int_equal(tst_take(&s, 0), -1);
    assert_int_equal(fw.running, 3);

    /* a short one arrives behind the fan-out's turn: one more of the
       fan-out, then it */
    tst_push(&s, &fa, a, 1, 1);
    mst_sched_done(&s, &fw);
    assert_int_equal(tst_take(&s, 0), 0);
    assert_int_equal(tst_take(&s, 0), -1);
    mst_sched_done(&s, &fw);
    assert_int_equal(tst_take(&s, 0), 1);
    assert_int_equal(tst_take(&s, 0), -1);

    /* more slots take more at once */
    mst_sched_set_slots(&s, 5);
    assert_int_equal(tst_take(&s, 0), 0);
    assert_int_equal(tst_take(&s, 0), 0);
    assert_int_equal(tst_take(&s, 0), -1);
    assert_int_equal(s.running, 5);

    /* 0 slots means 1 */
    mst_sched_set_slots(&s, 0);
    assert_int_equal(s.slots, 1);

    /* dropping returns the queued steps, in order */
    it = mst_sched_flow_drop(&s, &fw);
    for (i = 6; i < 10; i++) {
        assert_non_null(it);
        assert_int_equal(((tst_step_t *) it)->n, i);
        it = it->next;
    }
    assert_null(it);
    assert_int_equal(fw.queued, 0);
    assert_int_equal(s.queued, 0);
    assert_null(s.head);

    /* done after the drop still frees the slots */
    while (s.running > 0) {
        f = fw.running ? &fw : &fa;
        mst_sched_done(&s, f);
    }
    assert_int_equal(fw.running, 0);
    assert_int_equal(fa.running, 0);
}


static void
test_sched_weight(void **state)
{
    int               i, n[2];
    mst_sched_t       s;
    tst_step_t        x[30], y[30];
    mst_sched_flow_t  fx, fy;

    mst_sched_init(&s, 1);
    mst_sched_flow_init(&fx, 2);
    mst_sched_flow_init(&fy, 1);

    tst_push(&s, &fx, x, 0, 30);
    tst_push(&s, &fy, y, 1, 30);

    n[0] = n[1] = 0;
    for (i = 0; i < 30; i++) {
        n[tst_take(&s, 1)]++;
    }

    /* two of x for one of y */
    assert_int_equal(n[0], 20);
    assert_int_equal(n[1], 10);

    mst_sched_flow_drop(&s, &fx);
    mst_sched_flow_drop(&s, &fy);
    assert_null(s.head);
    assert_null(s.last);
}


static void
test_sched_drop_middle(void **state)
{
    mst_sched_t       s;
    tst_step_t        a[2], b[2], c[2];
    mst_sched_flow_t  fa, fb, fc;

    mst_sched_init(&s, 8);
    mst_sched_flow_init(&fa, 1);
    mst_sched_flow_init(&fb, 1);
    mst_sched_flow_init(&fc, 1);

    tst_push(&s, &fa, a, 0, 2);
    tst_push(&s, &fb, b, 1, 2);
    tst_push(&s, &fc, c, 2, 2);

    /* the middle and then the last of the ring */
    mst_sched_flow_drop(&s, &fb);
    assert_int_equal(s.queued, 4);
    assert_int_equal(tst_take(&s, 1), 0);
    mst_sched_flow_drop(&s, &fc);
    assert_ptr_equal(s.last, &fa);
    assert_int_equal(tst_take(&s, 1), 0);
    assert_int_equal(tst_take(&s, 1), -1);

    /* a dropped flow may queue again */
    tst_push(&s, &fb, b, 1, 1);
    assert_int_equal(tst_take(&s, 1), 1);

    /* dropping a flow with nothing queued is harmless */
    assert_null(mst_sched_flow_drop(&s, &fb));
}


static void
test_sched_room(void **state)
{
    assert_int_equal(mst_sched_room(0, 5), SIZE_MAX);
    assert_int_equal(mst_sched_room(4, 0), 4);
    assert_int_equal(mst_sched_room(4, 3), 1);
    assert_int_equal(mst_sched_room(4, 4), 0);
    assert_int_equal(mst_sched_room(4, 9), 0);
}


/* the runner under a cap */

static char *
tst_fan_graph(int width)
{
    int     i;
    char    name[16];
    json_t  *g, *nodes, *edges;
    char   *text;

    g = json_object();
    nodes = json_object();
    edges = json_array();

    json_object_set_new(g, "name", json_string("wide"));
    json_object_set_new(g, "entry", json_string("root"));
    json_object_set_new(nodes, "root", json_pack("{s:s}", "agent", "echo"));

    for (i = 0; i < width; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        json_object_set_new(nodes, name, json_pack("{s:s}", "agent", "echo"));
        json_array_append_new(edges, json_pack("{s:s, s:s}", "from", "root",
                                               "to", name));
    }

    json_object_set_new(g, "nodes", nodes);
    json_object_set_new(g, "edges", edges);

    text = json_dumps(g, JSON_COMPACT);
    json_decref(g);

    return text;
}


static size_t
tst_frontier_count(json_t *cp, const char *status)
{
    size_t   i, n;
    json_t  *step;

    n = 0;

    json_array_foreach(json_object_get(cp, "frontier"), i, step) {
        if (strcmp(tst_str(step, "status"), status) == 0) {
            n++;
        }
    }

    return n;
}


static void
test_run_cap(void **state)
{
    int              rc;
    char             id[MST_ID_LEN + 1], err[MST_ERRLEN], *text;
    size_t           i;
    json_t          *cp, *list;
    uint64_t         seq;
    mst_graph_t     *g;
    tst_drive_t      dr;
    mst_run_next_t   next, after;

    text = tst_fan_graph(40);
    g = tst_named(text);
    free(text);

    tst.env.flush_ms = 0;
    tst.env.step_cap = 3;

    tst_create(&tst.env, g, "wide", id);
    tst_claim(&tst.env, id, &next);
    assert_int_equal(next.nsteps, 1);           /* root */

    /* root's commit begins 3 of the 40; the rest stay pending */
    rc = mst_run_step_exec(&tst.env, id, next.epoch, &next.steps[0],
                           &(int) { MST_STEP_RUNNING }, &after, err,
                           sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(after.nsteps, 3);
    mst_run_next_free(&next);

    cp = tst_checkpoint(id, &seq);
    assert_int_equal(tst_frontier_count(cp, "running"), 3);
    assert_int_equal(tst_frontier_count(cp, "pending"), 37);
    json_decref(cp);

    /* one step done makes room for one */
    rc = mst_run_step_exec(&tst.env, id, after.epoch, &after.steps[0],
                           &(int) { MST_STEP_RUNNING }, &next, err,
                           sizeof(err));
    assert_int_equal(rc, MST_OK);
    assert_int_equal(next.nsteps, 1);
    mst_run_next_free(&next);
    mst_run_next_free(&after);

    cp = tst_checkpoint(id, &seq);
    assert_int_equal(tst_frontier_count(cp, "running"), 3);
    assert_int_equal(tst_frontier_count(cp, "pending"), 36);
    json_decref(cp);

    /* this process dies with 3 begun: another resumes from the
       checkpoint, the 36 pending included, never more than 3 at once */
    tst_kill(tst.env.pid);
    tst.env.pid = TST_PID_BASE + 1;
    tst_claim(&tst.env, id, &next);
    assert_true(next.nsteps >= 1 && next.nsteps <= 3);

    tst_drive_init(&dr);
    rc = tst_drive(&tst.env, id, &next, 0, &dr);
    if (rc != MST_OK) {
        fail_msg("drive: %s", dr.err);
    }
    assert_true(dr.runs >= 39);
    tst_drive_free(&dr);

    /* no checkpoint ever had more than 3 running */
    list = tst_checkpoints(id);
    assert_true(json_array_size(list) > 40);
    json_array_foreach(list, i, cp) {
        assert_true(tst_frontier_count(json_object_get(cp, "checkpoint"),
                                       "running") <= 3);
    }
    json_decref(list);

    cp = tst_checkpoint(id, &seq);
    assert_string_equal(tst_str(cp, "status"), "complete");
    json_decref(cp);

    /* no cap: all 40 at once */
    tst.env.step_cap = 0;
    tst_drive_init(&dr);
    tst_run(g, "wide", 0, id, &dr, "complete");
    assert_int_equal(dr.runs, 41);
    tst_drive_free(&dr);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_sched_round_robin),
        cmocka_unit_test(test_sched_slots),
        cmocka_unit_test(test_sched_weight),
        cmocka_unit_test(test_sched_drop_middle),
        cmocka_unit_test(test_sched_room),
        cmocka_unit_test_setup_teardown(test_run_cap, tst_setup,
                                        tst_teardown),
    };

    return cmocka_run_group_tests(tests, tst_group_setup,
                                  tst_group_teardown);
}
