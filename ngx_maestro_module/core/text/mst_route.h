/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The routing decision, one place for every way in: what runs a prompt
 * that did not name its workflow or model ("workflow": "auto" on a
 * submission, "model": "auto" on /v1/chat/completions, and what
 * POST /api/v1/analyze reports).
 *
 * In this order:
 *
 *   1. the prompt's intent has a route (maestro_intent_route): that
 *      workflow;
 *   2. its complexity tier has a model (maestro_model_tier): that
 *      provider model, unless the caller needs a workflow (a submission);
 *   3. the default workflow;
 *   4. nothing: MST_NOTFOUND, with a message naming the directives.
 *
 * The router borrows the analyzer and the strings of the configuration;
 * it is immutable once built, so any thread may use it. The result's
 * strings are borrowed from the router (they outlive requests).
 */

#ifndef _MST_ROUTE_H_INCLUDED_
#define _MST_ROUTE_H_INCLUDED_

#include "mst_common.h"
#include "mst_intent.h"

#define MST_ROUTE_TIERS      3      /* simple, moderate, complex */

/* mst_route() flags */
#define MST_ROUTE_WORKFLOW   0x1    /* only a workflow will do */

typedef enum {
    MST_ROUTE_NONE = 0,
    MST_ROUTE_TO_WORKFLOW,
    MST_ROUTE_TO_MODEL
} mst_route_kind_t;

typedef struct {
    const mst_intents_t  *intents;      /* maestro_intent, or NULL */
    const char           *tier_model[MST_ROUTE_TIERS]; /* or NULL */
    const char           *default_workflow;            /* or NULL */
} mst_router_t;

typedef struct {
    mst_route_kind_t      kind;
    const char           *target;       /* the workflow or the model */
    const char           *intent;       /* for X-Maestro-Route logs */
    const char           *complexity;   /* for X-Maestro-Complexity */
    mst_analysis_t        analysis;     /* the signals behind it */
} mst_route_t;

/* "simple" 0, "moderate" 1, "complex" 2, anything else -1 */
int mst_route_tier(const char *name);

/*
 * Decides the route of text (UTF-8, len bytes). MST_OK: *out says where;
 * MST_NOTFOUND: no route (err says which directives give one); out is
 * filled in either case (kind MST_ROUTE_NONE, the analysis).
 */
int mst_route(const mst_router_t *rt, const char *text, size_t len,
    int flags, mst_route_t *out, char *err, size_t errlen);

/* {"workflow": name} or {"model": name}; null for no route */
json_t *mst_route_json(const mst_route_t *route);

#endif /* _MST_ROUTE_H_INCLUDED_ */
