/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * A workflow graph, parsed and validated once (at configuration time for
 * maestro_workflow files, at submission for inline graphs). Format:
 *
 *   {
 *     "name": "default",
 *     "entry": "planner",                  node that runs first
 *     "max_steps": 100,                    optional, step budget (loops)
 *     "nodes": {
 *       "planner":  { "agent": "planner", "config": {...},
 *                     "timeout_ms": 30000,
 *                     "retry": { "max": 2, "backoff_ms": 200 } },
 *       "llm":      { "agent": "llm", "foreach": "plan.steps" },
 *       "reviewer": { "agent": "reviewer" }
 *     },
 *     "edges": [
 *       { "from": "planner",  "to": "llm" },
 *       { "from": "llm",      "to": "reviewer" },
 *       { "from": "reviewer", "to": "llm",
 *         "when": { "path": "review.verdict", "equals": "revise" } },
 *       { "from": "reviewer", "to": "$end", "else": true }
 *     ]
 *   }
 *
 * Nodes: "agent" names a configured agent (maestro_agent); "config" is
 * merged over the agent's configuration and passed to the plugin;
 * "foreach": a dotted state path to an array: the node runs once per item,
 * in parallel, as instances index 0..n-1 (an empty or missing array runs it
 * zero times and its out-edges still fire). timeout_ms default 60000,
 * retry.max default 0, retry.backoff_ms default 500.
 *
 * Edges: fire after their "from" node completes. An edge without "when" or
 * "else" always fires. An edge with "when" fires when its condition holds:
 *   { "path": P, "equals": V }       state at P equals JSON value V
 *   { "path": P, "not_equals": V }
 *   { "path": P, "gt": N } / "lt"    numeric comparison
 *   { "path": P, "matches": RE }     PCRE2 match on a string value
 *   { "path": P, "exists": bool }
 * An edge with "else": true fires when none of the same node's "when"
 * edges fired. "to": "$end" fires nothing (ends that branch). Several fired
 * edges = fan-out (the targets run in parallel).
 *
 * Validation (errors name the node or edge): entry exists, every edge's
 * from/to exists ("$end" allowed as to), every node's agent exists (via the
 * callback), timeouts and retries in range, regexes compile, and every
 * cycle (strongly connected component) has an edge leaving it, so no loop
 * lacks an exit ("cycle with no exit: a -> b -> a").
 */

#ifndef _MST_GRAPH_H_INCLUDED_
#define _MST_GRAPH_H_INCLUDED_

#include "mst_common.h"

#define MST_END  "$end"

typedef struct mst_graph_s  mst_graph_t;

typedef struct {
    const char  *name;
    const char  *agent;
    json_t      *config;        /* node config object (borrowed), or NULL */
    const char  *foreach;       /* state path, or NULL */
    int64_t      timeout_ms;
    int          retry_max;
    int64_t      retry_backoff_ms;
} mst_node_t;

/* returns non-zero when an agent of that name is configured */
typedef int (*mst_agent_exists_pt)(const char *agent, void *arg);

/* def is not stolen; exists may be NULL (no agent check) */
mst_graph_t *mst_graph_parse(json_t *def, mst_agent_exists_pt exists,
    void *arg, char *err, size_t errlen);

/* parse a file; err gives the reason, the caller names the file */
mst_graph_t *mst_graph_load(const char *path, mst_agent_exists_pt exists,
    void *arg, char *err, size_t errlen);

void mst_graph_free(mst_graph_t *g);

const char *mst_graph_name(const mst_graph_t *g);

/*
 * Give a configured graph the name users call it by (the maestro_workflow
 * directive's), in its definition too: the name a submission looks up,
 * /v1/models lists and a workflow record stores is then one name.
 */
int mst_graph_rename(mst_graph_t *g, const char *name);
const char *mst_graph_entry(const mst_graph_t *g);
int mst_graph_max_steps(const mst_graph_t *g);

/* the definition as given (borrowed): stored with a workflow for resume */
json_t *mst_graph_json(const mst_graph_t *g);

const mst_node_t *mst_graph_node(const mst_graph_t *g, const char *name);
size_t mst_graph_node_count(const mst_graph_t *g);
const mst_node_t *mst_graph_node_at(const mst_graph_t *g, size_t i);

/*
 * Names of the nodes that the completion of node "from" triggers, given the
 * workflow state (conditions are evaluated on it). *to: new JSON array of
 * node names (never "$end").
 */
int mst_graph_next(const mst_graph_t *g, const char *from, json_t *state,
    json_t **to);

/*
 * mst_graph_cache.c: the parsed graphs of workflows submitted with their
 * own (their definitions never change), by workflow id, per process.
 * get: a graph in use until mst_graph_cache_release(), or NULL.
 * keep: 1 when g is kept (and in use: release it), 0 when not (its owner
 * frees it).
 */
mst_graph_t *mst_graph_cache_get(const char *id);
int mst_graph_cache_keep(const char *id, mst_graph_t *g);
void mst_graph_cache_release(mst_graph_t *g);

#endif /* _MST_GRAPH_H_INCLUDED_ */
