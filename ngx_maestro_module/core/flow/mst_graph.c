/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * A parsed graph owns a deep copy of its definition; node names, agent
 * names, condition paths and values point into that copy, so the graph is
 * one allocation tree that lives until mst_graph_free(). After parsing the
 * graph is read-only and may be shared by threads (mst_graph_next()
 * allocates its PCRE2 match data per call; the match context, which only
 * carries limits, is never modified after parsing).
 *
 * Nodes are an array in definition order with a name -> index map (a JSON
 * object). Edges are an array in definition order; out-edges are grouped
 * per "from" node (CSR layout: out[out_start[i] .. out_start[i + 1])), in
 * definition order, so mst_graph_next() evaluates them as written.
 *
 * Edges are numbered from 0 in error messages ("edge #2" is edges[2]).
 *
 * Cycle check: strongly connected components by Tarjan's algorithm, run
 * iteratively (no recursion depth limit). A component is a loop when it
 * has more than one node or a self-loop; every loop needs at least one
 * edge (conditional or not) to a node outside it or to "$end".
 *
 * Condition semantics on a state value v at "path":
 *   equals V      v present and json_equal(v, V)
 *   not_equals V  not (equals V); a missing v is "not equal"
 *   gt / lt N     v a number (integer or real) and v > N / v < N
 *   matches RE    v a string and RE matches somewhere in it
 *   exists B      (v present and not JSON null) == B
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "mst_graph.h"
#include "mst_regex.h"


#define MST_GRAPH_NAME_MAX        64
#define MST_GRAPH_TIMEOUT_DEF     60000
#define MST_GRAPH_TIMEOUT_MAX     3600000
#define MST_GRAPH_RETRY_MAX       10
#define MST_GRAPH_BACKOFF_DEF     500
#define MST_GRAPH_BACKOFF_MAX     600000
#define MST_GRAPH_STEPS_DEF       100
#define MST_GRAPH_STEPS_MAX       100000
#define MST_GRAPH_MATCH_LIMIT     1000000

#define MST_GRAPH_END             (-1)

typedef enum {
    MST_GRAPH_EDGE_ALWAYS = 0,
    MST_GRAPH_EDGE_WHEN,
    MST_GRAPH_EDGE_ELSE
} mst_graph_edge_kind_e;

typedef enum {
    MST_GRAPH_OP_EQUALS = 0,
    MST_GRAPH_OP_NOT_EQUALS,
    MST_GRAPH_OP_GT,
    MST_GRAPH_OP_LT,
    MST_GRAPH_OP_MATCHES,
    MST_GRAPH_OP_EXISTS
} mst_graph_op_e;

typedef struct {
    int                   from;
    int                   to;           /* node index or MST_GRAPH_END */
    mst_graph_edge_kind_e kind;
    mst_graph_op_e        op;
    const char           *path;
    json_t               *value;        /* borrowed from the definition */
    pcre2_code           *re;
} mst_graph_edge_t;

struct mst_graph_s {
    json_t               *def;          /* owned deep copy */
    json_t               *index;        /* name -> node index */
    const char           *name;
    const char           *entry;
    int                   max_steps;

    mst_node_t           *nodes;
    size_t                nnodes;

    mst_graph_edge_t     *edges;
    size_t                nedges;

    size_t               *out;          /* edge indices grouped by from */
    size_t               *out_start;    /* nnodes + 1 offsets into out */

    pcre2_match_context  *mctx;
};

static const char *mst_graph_ops[] = {
    "equals", "not_equals", "gt", "lt", "matches", "exists", NULL
};


static int mst_graph_name_valid(const char *name);
static int mst_graph_int(json_t *obj, const char *key, int64_t def,
    int64_t min, int64_t max, int64_t *out);
static int mst_graph_parse_node(mst_graph_t *g, size_t i, const char *name,
    json_t *def, mst_agent_exists_pt exists, void *arg, char *err,
    size_t errlen);
static int mst_graph_parse_edge(mst_graph_t *g, size_t i, json_t *def,
    char *err, size_t errlen);
static int mst_graph_parse_when(mst_graph_t *g, mst_graph_edge_t *e,
    json_t *when, const char *where, char *err, size_t errlen);
static int mst_graph_find_entry(mst_graph_t *g, json_t *def, char *err,
    size_t errlen);
static int mst_graph_build_out(mst_graph_t *g);
static int mst_graph_check_cycles(mst_graph_t *g, char *err, size_t errlen);
static int mst_graph_check_scc(mst_graph_t *g, const int *comp, int c,
    char *err, size_t errlen);
static size_t mst_graph_append(char *buf, size_t size, const char *name);
static int mst_graph_node_index(const mst_graph_t *g, const char *name);
static int mst_graph_eval(const mst_graph_t *g, const mst_graph_edge_t *e,
    json_t *state);
static int mst_graph_add_name(json_t *arr, const char *name);


/* runs at configuration time or at submission (event loop) */

mst_graph_t *
mst_graph_parse(json_t *def, mst_agent_exists_pt exists, void *arg,
    char *err, size_t errlen)
{
    size_t        i;
    json_t       *v, *nodes, *edges, *ndef;
    int64_t       steps;
    const char   *key;
    mst_graph_t  *g;

    if (!json_is_object(def)) {
        mst_err(err, errlen, MST_EINVAL,
                "graph definition must be a JSON object");
        return NULL;
    }

    g = calloc(1, sizeof(mst_graph_t));
    if (g == NULL) {
        mst_err(err, errlen, MST_ENOMEM, "out of memory");
        return NULL;
    }

    g->def = json_deep_copy(def);
    g->index = json_object();
    g->mctx = pcre2_match_context_create(NULL);

    if (g->def == NULL || g->index == NULL || g->mctx == NULL) {
        mst_err(err, errlen, MST_ENOMEM, "out of memory");
        goto failed;
    }

    pcre2_set_match_limit(g->mctx, MST_GRAPH_MATCH_LIMIT);
    pcre2_set_depth_limit(g->mctx, MST_GRAPH_MATCH_LIMIT / 10);

    def = g->def;

    /* "name" */

    v = json_object_get(def, "name");
    if (v == NULL) {
        g->name = "inline";

    } else if (json_is_string(v) && json_string_length(v) > 0) {
        g->name = json_string_value(v);

    } else {
        mst_err(err, errlen, MST_EINVAL,
                "\"name\" must be a non-empty string");
        goto failed;
    }

    /* "max_steps" */

    if (mst_graph_int(def, "max_steps", MST_GRAPH_STEPS_DEF, 1,
                      MST_GRAPH_STEPS_MAX, &steps)
        != MST_OK)
    {
        mst_err(err, errlen, MST_EINVAL,
                "\"max_steps\" must be an integer in 1..%d",
                MST_GRAPH_STEPS_MAX);
        goto failed;
    }

    g->max_steps = (int) steps;

    /* "nodes" */

    nodes = json_object_get(def, "nodes");
    if (!json_is_object(nodes) || json_object_size(nodes) == 0) {
        mst_err(err, errlen, MST_EINVAL,
                "\"nodes\" must be a non-empty object");
        goto failed;
    }

    g->nnodes = json_object_size(nodes);
    g->nodes = calloc(g->nnodes, sizeof(mst_node_t));
    if (g->nodes == NULL) {
        mst_err(err, errlen, MST_ENOMEM, "out of memory");
        goto failed;
    }

    i = 0;
    json_object_foreach(nodes, key, ndef) {
        if (mst_graph_parse_node(g, i, key, ndef, exists, arg, err, errlen)
            != MST_OK)
        {
            goto failed;
        }

        if (json_object_set_new(g->index, key, json_integer((json_int_t) i))
            != 0)
        {
            mst_err(err, errlen, MST_ENOMEM, "out of memory");
            goto failed;
        }

        i++;
    }

    /* "edges" */

    edges = json_object_get(def, "edges");
    if (!json_is_array(edges)) {
        mst_err(err, errlen, MST_EINVAL, "\"edges\" must be an array");
        goto failed;
    }

    g->nedges = json_array_size(edges);

    if (g->nedges > 0) {
        g->edges = calloc(g->nedges, sizeof(mst_graph_edge_t));
        if (g->edges == NULL) {
            mst_err(err, errlen, MST_ENOMEM, "out of memory");
            goto failed;
        }
    }

    for (i = 0; i < g->nedges; i++) {
        if (mst_graph_parse_edge(g, i, json_array_get(edges, i), err, errlen)
            != MST_OK)
        {
            goto failed;
        }
    }

    if (mst_graph_build_out(g) != MST_OK) {
        mst_err(err, errlen, MST_ENOMEM, "out of memory");
        goto failed;
    }

    if (mst_graph_find_entry(g, def, err, errlen) != MST_OK) {
        goto failed;
    }

    if (mst_graph_check_cycles(g, err, errlen) != MST_OK) {
        goto failed;
    }

    return g;

failed:

    mst_graph_free(g);
    return NULL;
}


/*
 * The file is opened here, not by json_load_file(), so that a file that
 * cannot be opened or read is reported with the system's reason, and
 * jansson's "line -1 column -1" never reaches a message.
 */
mst_graph_t *
mst_graph_load(const char *path, mst_agent_exists_pt exists, void *arg,
    char *err, size_t errlen)
{
    int           rd;
    FILE         *f;
    json_t       *def;
    mst_graph_t  *g;
    json_error_t  jerr;

    f = fopen(path, "r");
    if (f == NULL) {
        mst_err(err, errlen, MST_EINVAL, "cannot open: %s", strerror(errno));
        return NULL;
    }

    def = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    rd = ferror(f) ? errno : 0;
    fclose(f);

    if (rd != 0) {
        json_decref(def);
        mst_err(err, errlen, MST_EINVAL, "cannot read: %s", strerror(rd));
        return NULL;
    }

    if (def == NULL) {
        mst_err(err, errlen, MST_EINVAL, "line %d column %d: %s",
                jerr.line, jerr.column, jerr.text);
        return NULL;
    }

    g = mst_graph_parse(def, exists, arg, err, errlen);
    json_decref(def);

    return g;
}


void
mst_graph_free(mst_graph_t *g)
{
    size_t  i;

    if (g == NULL) {
        return;
    }

    for (i = 0; i < g->nedges; i++) {
        if (g->edges[i].re != NULL) {
            pcre2_code_free(g->edges[i].re);
        }
    }

    if (g->mctx != NULL) {
        pcre2_match_context_free(g->mctx);
    }

    free(g->edges);
    free(g->nodes);
    free(g->out);
    free(g->out_start);
    json_decref(g->index);
    json_decref(g->def);
    free(g);
}


const char *
mst_graph_name(const mst_graph_t *g)
{
    return g->name;
}


int
mst_graph_rename(mst_graph_t *g, const char *name)
{
    json_t  *v;

    v = json_string(name);
    if (v == NULL || json_object_set_new(g->def, "name", v) != 0) {
        return MST_ENOMEM;
    }

    g->name = json_string_value(v);

    return MST_OK;
}


const char *
mst_graph_entry(const mst_graph_t *g)
{
    return g->entry;
}


int
mst_graph_max_steps(const mst_graph_t *g)
{
    return g->max_steps;
}


json_t *
mst_graph_json(const mst_graph_t *g)
{
    return g->def;
}


const mst_node_t *
mst_graph_node(const mst_graph_t *g, const char *name)
{
    int  i;

    i = mst_graph_node_index(g, name);

    return i < 0 ? NULL : &g->nodes[i];
}


size_t
mst_graph_node_count(const mst_graph_t *g)
{
    return g->nnodes;
}


const mst_node_t *
mst_graph_node_at(const mst_graph_t *g, size_t i)
{
    return i < g->nnodes ? &g->nodes[i] : NULL;
}


int
mst_graph_next(const mst_graph_t *g, const char *from, json_t *state,
    json_t **to)
{
    int                      n, any_when;
    size_t                   k;
    json_t                  *arr;
    const mst_graph_edge_t  *e;

    *to = NULL;

    n = mst_graph_node_index(g, from);
    if (n < 0) {
        return MST_NOTFOUND;
    }

    arr = json_array();
    if (arr == NULL) {
        return MST_ENOMEM;
    }

    any_when = 0;

    for (k = g->out_start[n]; k < g->out_start[n + 1]; k++) {
        e = &g->edges[g->out[k]];

        if (e->kind == MST_GRAPH_EDGE_ELSE) {
            continue;
        }

        if (e->kind == MST_GRAPH_EDGE_WHEN) {
            if (!mst_graph_eval(g, e, state)) {
                continue;
            }

            any_when = 1;
        }

        if (e->to != MST_GRAPH_END
            && mst_graph_add_name(arr, g->nodes[e->to].name) != MST_OK)
        {
            json_decref(arr);
            return MST_ENOMEM;
        }
    }

    if (!any_when) {
        for (k = g->out_start[n]; k < g->out_start[n + 1]; k++) {
            e = &g->edges[g->out[k]];

            if (e->kind == MST_GRAPH_EDGE_ELSE && e->to != MST_GRAPH_END
                && mst_graph_add_name(arr, g->nodes[e->to].name) != MST_OK)
            {
                json_decref(arr);
                return MST_ENOMEM;
            }
        }
    }

    *to = arr;

    return MST_OK;
}


static int
mst_graph_add_name(json_t *arr, const char *name)
{
    size_t   i;
    json_t  *v;

    json_array_foreach(arr, i, v) {
        if (strcmp(json_string_value(v), name) == 0) {
            return MST_OK;
        }
    }

    return json_array_append_new(arr, json_string(name)) == 0
           ? MST_OK : MST_ENOMEM;
}


static int
mst_graph_eval(const mst_graph_t *g, const mst_graph_edge_t *e,
    json_t *state)
{
    int                rc;
    json_t            *v;
    double             a, b;
    pcre2_match_data  *md;

    v = mst_json_path(state, e->path);

    switch (e->op) {

    case MST_GRAPH_OP_EQUALS:
        return v != NULL && json_equal(v, e->value);

    case MST_GRAPH_OP_NOT_EQUALS:
        return v == NULL || !json_equal(v, e->value);

    case MST_GRAPH_OP_GT:
    case MST_GRAPH_OP_LT:
        if (!json_is_number(v)) {
            return 0;
        }

        a = json_number_value(v);
        b = json_number_value(e->value);

        return e->op == MST_GRAPH_OP_GT ? a > b : a < b;

    case MST_GRAPH_OP_MATCHES:
        if (!json_is_string(v)) {
            return 0;
        }

        md = pcre2_match_data_create_from_pattern(e->re, NULL);
        if (md == NULL) {
            return 0;
        }

        rc = pcre2_match(e->re, (PCRE2_SPTR) json_string_value(v),
                         json_string_length(v), 0, 0, md, g->mctx);

        pcre2_match_data_free(md);

        return rc >= 0;

    case MST_GRAPH_OP_EXISTS:
        return (v != NULL && !json_is_null(v)) == json_is_true(e->value);
    }

    return 0;
}


static int
mst_graph_node_index(const mst_graph_t *g, const char *name)
{
    json_t  *v;

    if (name == NULL) {
        return -1;
    }

    v = json_object_get(g->index, name);

    return v == NULL ? -1 : (int) json_integer_value(v);
}


static int
mst_graph_name_valid(const char *name)
{
    size_t  i;
    char    c;

    for (i = 0; name[i] != '\0'; i++) {
        c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }

        if (i >= MST_GRAPH_NAME_MAX) {
            return 0;
        }
    }

    return i > 0;
}


/* an optional integer member in min..max; MST_EINVAL if not */

static int
mst_graph_int(json_t *obj, const char *key, int64_t def, int64_t min,
    int64_t max, int64_t *out)
{
    json_t   *v;
    int64_t   n;

    v = json_object_get(obj, key);
    if (v == NULL) {
        *out = def;
        return MST_OK;
    }

    if (!json_is_integer(v)) {
        return MST_EINVAL;
    }

    n = (int64_t) json_integer_value(v);
    if (n < min || n > max) {
        return MST_EINVAL;
    }

    *out = n;

    return MST_OK;
}


static int
mst_graph_parse_node(mst_graph_t *g, size_t i, const char *name,
    json_t *def, mst_agent_exists_pt exists, void *arg, char *err,
    size_t errlen)
{
    json_t      *v, *retry;
    int64_t      n;
    mst_node_t  *node;

    if (!mst_graph_name_valid(name)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%.64s\": invalid name "
                       "(1 to %d characters of A-Z a-z 0-9 _ -)",
                       name, MST_GRAPH_NAME_MAX);
    }

    if (!json_is_object(def)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%s\": must be an object", name);
    }

    node = &g->nodes[i];
    node->name = name;

    v = json_object_get(def, "agent");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%s\": \"agent\" must be a non-empty string",
                       name);
    }

    node->agent = json_string_value(v);

    if (exists != NULL && !exists(node->agent, arg)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%s\": unknown agent \"%.64s\"",
                       name, node->agent);
    }

    v = json_object_get(def, "config");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            return mst_err(err, errlen, MST_EINVAL,
                           "node \"%s\": \"config\" must be an object",
                           name);
        }

        node->config = v;
    }

    v = json_object_get(def, "foreach");
    if (v != NULL) {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            return mst_err(err, errlen, MST_EINVAL,
                           "node \"%s\": \"foreach\" must be a string path",
                           name);
        }

        node->foreach = json_string_value(v);
    }

    if (mst_graph_int(def, "timeout_ms", MST_GRAPH_TIMEOUT_DEF, 1,
                      MST_GRAPH_TIMEOUT_MAX, &n)
        != MST_OK)
    {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%s\": \"timeout_ms\" must be an integer "
                       "in 1..%d", name, MST_GRAPH_TIMEOUT_MAX);
    }

    node->timeout_ms = n;
    node->retry_max = 0;
    node->retry_backoff_ms = MST_GRAPH_BACKOFF_DEF;

    retry = json_object_get(def, "retry");
    if (retry == NULL) {
        return MST_OK;
    }

    if (!json_is_object(retry)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%s\": \"retry\" must be an object", name);
    }

    if (mst_graph_int(retry, "max", 0, 0, MST_GRAPH_RETRY_MAX, &n) != MST_OK) {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%s\": \"retry.max\" must be an integer "
                       "in 0..%d", name, MST_GRAPH_RETRY_MAX);
    }

    node->retry_max = (int) n;

    if (mst_graph_int(retry, "backoff_ms", MST_GRAPH_BACKOFF_DEF, 0,
                      MST_GRAPH_BACKOFF_MAX, &n)
        != MST_OK)
    {
        return mst_err(err, errlen, MST_EINVAL,
                       "node \"%s\": \"retry.backoff_ms\" must be an "
                       "integer in 0..%d", name, MST_GRAPH_BACKOFF_MAX);
    }

    node->retry_backoff_ms = n;

    return MST_OK;
}


static int
mst_graph_parse_edge(mst_graph_t *g, size_t i, json_t *def, char *err,
    size_t errlen)
{
    char               where[200];
    json_t            *from, *to, *when, *els;
    const char        *fs, *ts;
    mst_graph_edge_t  *e;

    if (!json_is_object(def)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "edge #%zu: must be an object", i);
    }

    from = json_object_get(def, "from");
    to = json_object_get(def, "to");

    fs = json_is_string(from) ? json_string_value(from) : "?";
    ts = json_is_string(to) ? json_string_value(to) : "?";

    snprintf(where, sizeof(where), "edge #%zu (%.64s -> %.64s)", i, fs, ts);

    if (!json_is_string(from)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "%s: \"from\" must be a string", where);
    }

    if (!json_is_string(to)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "%s: \"to\" must be a string", where);
    }

    e = &g->edges[i];

    e->from = mst_graph_node_index(g, fs);
    if (e->from < 0) {
        return mst_err(err, errlen, MST_EINVAL,
                       "%s: unknown node \"%.64s\"", where, fs);
    }

    if (strcmp(ts, MST_END) == 0) {
        e->to = MST_GRAPH_END;

    } else {
        e->to = mst_graph_node_index(g, ts);
        if (e->to < 0) {
            return mst_err(err, errlen, MST_EINVAL,
                           "%s: unknown node \"%.64s\"", where, ts);
        }
    }

    when = json_object_get(def, "when");
    els = json_object_get(def, "else");

    if (when != NULL && els != NULL) {
        return mst_err(err, errlen, MST_EINVAL,
                       "%s: \"when\" and \"else\" cannot be used together",
                       where);
    }

    if (els != NULL) {
        if (!json_is_true(els)) {
            return mst_err(err, errlen, MST_EINVAL,
                           "%s: \"else\" must be true", where);
        }

        e->kind = MST_GRAPH_EDGE_ELSE;
        return MST_OK;
    }

    if (when == NULL) {
        e->kind = MST_GRAPH_EDGE_ALWAYS;
        return MST_OK;
    }

    e->kind = MST_GRAPH_EDGE_WHEN;

    return mst_graph_parse_when(g, e, when, where, err, errlen);
}


static int
mst_graph_parse_when(mst_graph_t *g, mst_graph_edge_t *e, json_t *when,
    const char *where, char *err, size_t errlen)
{
    int          nops, op, i;
    char         why[300];
    json_t      *path, *v;
    const char  *key;

    if (!json_is_object(when)) {
        return mst_err(err, errlen, MST_EINVAL,
                       "%s: \"when\" must be an object", where);
    }

    path = NULL;
    nops = 0;
    op = 0;

    json_object_foreach(when, key, v) {
        if (strcmp(key, "path") == 0) {
            path = v;
            continue;
        }

        for (i = 0; mst_graph_ops[i] != NULL; i++) {
            if (strcmp(key, mst_graph_ops[i]) == 0) {
                break;
            }
        }

        if (mst_graph_ops[i] == NULL) {
            return mst_err(err, errlen, MST_EINVAL,
                           "%s: \"when\": unknown key \"%.64s\"", where, key);
        }

        op = i;
        nops++;
    }

    if (!json_is_string(path) || json_string_length(path) == 0) {
        return mst_err(err, errlen, MST_EINVAL,
                       "%s: \"when\" needs \"path\" (a non-empty string)",
                       where);
    }

    if (nops != 1) {
        return mst_err(err, errlen, MST_EINVAL,
                       "%s: \"when\" needs exactly one of equals, "
                       "not_equals, gt, lt, matches, exists", where);
    }

    e->path = json_string_value(path);
    e->op = (mst_graph_op_e) op;
    e->value = json_object_get(when, mst_graph_ops[op]);

    switch (e->op) {

    case MST_GRAPH_OP_GT:
    case MST_GRAPH_OP_LT:
        if (!json_is_number(e->value)) {
            return mst_err(err, errlen, MST_EINVAL,
                           "%s: \"%s\" must be a number",
                           where, mst_graph_ops[op]);
        }
        break;

    case MST_GRAPH_OP_EXISTS:
        if (!json_is_boolean(e->value)) {
            return mst_err(err, errlen, MST_EINVAL,
                           "%s: \"exists\" must be true or false", where);
        }
        break;

    case MST_GRAPH_OP_MATCHES:
        if (!json_is_string(e->value)) {
            return mst_err(err, errlen, MST_EINVAL,
                           "%s: \"matches\" must be a string", where);
        }

        e->re = mst_regex_compile(json_string_value(e->value),
                                  json_string_length(e->value), PCRE2_UTF,
                                  why, sizeof(why));
        if (e->re == NULL) {
            return mst_err(err, errlen, MST_EINVAL,
                           "%s: bad regex \"%.64s\": %s", where,
                           json_string_value(e->value), why);
        }
        break;

    default:
        break;
    }

    return MST_OK;
}


static int
mst_graph_find_entry(mst_graph_t *g, json_t *def, char *err, size_t errlen)
{
    int      found;
    char    *in;
    size_t   i, nroots;
    json_t  *v;

    v = json_object_get(def, "entry");

    if (v != NULL) {
        if (!json_is_string(v)) {
            return mst_err(err, errlen, MST_EINVAL,
                           "\"entry\" must be a string");
        }

        if (mst_graph_node_index(g, json_string_value(v)) < 0) {
            return mst_err(err, errlen, MST_EINVAL,
                           "entry \"%.64s\": unknown node",
                           json_string_value(v));
        }

        g->entry = json_string_value(v);
        return MST_OK;
    }

    in = calloc(g->nnodes, 1);
    if (in == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    for (i = 0; i < g->nedges; i++) {
        if (g->edges[i].to != MST_GRAPH_END) {
            in[g->edges[i].to] = 1;
        }
    }

    nroots = 0;
    found = -1;

    for (i = 0; i < g->nnodes; i++) {
        if (!in[i]) {
            nroots++;
            found = (int) i;
        }
    }

    free(in);

    if (nroots != 1) {
        return mst_err(err, errlen, MST_EINVAL,
                       "\"entry\" is required: %zu nodes have no incoming "
                       "edge", nroots);
    }

    g->entry = g->nodes[found].name;

    return MST_OK;
}


static int
mst_graph_build_out(mst_graph_t *g)
{
    size_t  i, *fill;

    g->out_start = calloc(g->nnodes + 1, sizeof(size_t));
    g->out = calloc(g->nedges + 1, sizeof(size_t));
    fill = calloc(g->nnodes + 1, sizeof(size_t));

    if (g->out_start == NULL || g->out == NULL || fill == NULL) {
        free(fill);
        return MST_ENOMEM;
    }

    for (i = 0; i < g->nedges; i++) {
        g->out_start[g->edges[i].from + 1]++;
    }

    for (i = 0; i < g->nnodes; i++) {
        g->out_start[i + 1] += g->out_start[i];
    }

    for (i = 0; i < g->nedges; i++) {
        g->out[g->out_start[g->edges[i].from] + fill[g->edges[i].from]++] = i;
    }

    free(fill);

    return MST_OK;
}


/* Tarjan's strongly connected components, iterative */

static int
mst_graph_check_cycles(mst_graph_t *g, char *err, size_t errlen)
{
    int      *idx, *low, *comp, *stack, *cv, rc, counter, ncomp, sp, cp;
    int       v, w, u;
    char     *onstack;
    size_t   *cpos, n, root;

    n = g->nnodes;

    idx = malloc(n * sizeof(int));
    low = malloc(n * sizeof(int));
    comp = malloc(n * sizeof(int));
    stack = malloc(n * sizeof(int));
    cv = malloc(n * sizeof(int));
    cpos = malloc(n * sizeof(size_t));
    onstack = calloc(n, 1);

    rc = MST_OK;

    if (idx == NULL || low == NULL || comp == NULL || stack == NULL
        || cv == NULL || cpos == NULL || onstack == NULL)
    {
        rc = mst_err(err, errlen, MST_ENOMEM, "out of memory");
        goto done;
    }

    for (root = 0; root < n; root++) {
        idx[root] = -1;
        comp[root] = -1;
    }

    counter = 0;
    ncomp = 0;
    sp = 0;

    for (root = 0; root < n; root++) {
        if (idx[root] >= 0) {
            continue;
        }

        cp = 0;
        v = (int) root;
        idx[v] = low[v] = counter++;
        stack[sp++] = v;
        onstack[v] = 1;
        cv[cp] = v;
        cpos[cp] = g->out_start[v];
        cp++;

        while (cp > 0) {
            v = cv[cp - 1];

            if (cpos[cp - 1] < g->out_start[v + 1]) {
                w = g->edges[g->out[cpos[cp - 1]++]].to;

                if (w == MST_GRAPH_END) {
                    continue;
                }

                if (idx[w] < 0) {
                    idx[w] = low[w] = counter++;
                    stack[sp++] = w;
                    onstack[w] = 1;
                    cv[cp] = w;
                    cpos[cp] = g->out_start[w];
                    cp++;

                } else if (onstack[w] && idx[w] < low[v]) {
                    low[v] = idx[w];
                }

                continue;
            }

            /* all successors of v explored */

            cp--;

            if (low[v] == idx[v]) {
                do {
                    u = stack[--sp];
                    onstack[u] = 0;
                    comp[u] = ncomp;
                } while (u != v);

                rc = mst_graph_check_scc(g, comp, ncomp, err, errlen);
                if (rc != MST_OK) {
                    goto done;
                }

                ncomp++;
            }

            if (cp > 0) {
                u = cv[cp - 1];
                if (low[v] < low[u]) {
                    low[u] = low[v];
                }
            }
        }
    }

done:

    free(idx);
    free(low);
    free(comp);
    free(stack);
    free(cv);
    free(cpos);
    free(onstack);

    return rc;
}


/*
 * Component c was just completed: every member has comp == c and every
 * edge to a node with comp < 0 or a different comp leaves the component
 * (Tarjan completes components in reverse topological order, so a member's
 * successors outside c are already assigned to earlier components).
 */

static int
mst_graph_check_scc(mst_graph_t *g, const int *comp, int c, char *err,
    size_t errlen)
{
    int                      loop, first, size, cur, next;
    char                     buf[MST_ERRLEN], *listed;
    size_t                   i, k, len;
    const mst_graph_edge_t  *e;

    loop = 0;
    size = 0;
    first = -1;

    for (i = 0; i < g->nnodes; i++) {
        if (comp[i] != c) {
            continue;
        }

        if (first < 0) {
            first = (int) i;
        }

        size++;

        for (k = g->out_start[i]; k < g->out_start[i + 1]; k++) {
            e = &g->edges[g->out[k]];

            if (e->to == MST_GRAPH_END || comp[e->to] != c) {
                return MST_OK;      /* an exit */
            }

            if (e->to == (int) i) {
                loop = 1;
            }
        }
    }

    if (size < 2 && !loop) {
        return MST_OK;
    }

    /*
     * a path-like listing: follow edges inside the component from the
     * first member while they lead to members not listed yet (a simple
     * cycle comes out in its real order), then the members left, then
     * the first again
     */

    listed = calloc(g->nnodes, 1);
    if (listed == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "out of memory");
    }

    len = 0;
    buf[0] = '\0';
    cur = first;

    while (cur >= 0) {
        listed[cur] = 1;
        len += mst_graph_append(buf + len, sizeof(buf) - len,
                                g->nodes[cur].name);
        next = -1;

        for (k = g->out_start[cur]; k < g->out_start[cur + 1]; k++) {
            e = &g->edges[g->out[k]];

            if (e->to != MST_GRAPH_END && comp[e->to] == c
                && !listed[e->to])
            {
                next = e->to;
                break;
            }
        }

        cur = next;
    }

    for (i = 0; i < g->nnodes; i++) {
        if (comp[i] == c && !listed[i]) {
            len += mst_graph_append(buf + len, sizeof(buf) - len,
                                    g->nodes[i].name);
        }
    }

    free(listed);

    if (len < sizeof(buf)) {
        snprintf(buf + len, sizeof(buf) - len, "%s", g->nodes[first].name);
    }

    return mst_err(err, errlen, MST_EINVAL, "cycle with no exit: %s", buf);
}


/* appends "name -> " to buf; returns the length added (0 when full) */

static size_t
mst_graph_append(char *buf, size_t size, const char *name)
{
    int  n;

    if (size == 0) {
        return 0;
    }

    n = snprintf(buf, size, "%s -> ", name);
    if (n < 0) {
        return 0;
    }

    return (size_t) n < size ? (size_t) n : size - 1;
}
