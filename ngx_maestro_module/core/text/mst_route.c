/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_route.h */

#include <string.h>

#include "mst_route.h"


static const char  *mst_route_tiers[MST_ROUTE_TIERS] = {
    "simple", "moderate", "complex"
};


int
mst_route_tier(const char *name)
{
    int  i;

    for (i = 0; name != NULL && i < MST_ROUTE_TIERS; i++) {
        if (strcmp(name, mst_route_tiers[i]) == 0) {
            return i;
        }
    }

    return -1;
}


int
mst_route(const mst_router_t *rt, const char *text, size_t len, int flags,
    mst_route_t *out, char *err, size_t errlen)
{
    int  tier;

    memset(out, 0, sizeof(mst_route_t));

    mst_analyze(rt->intents, text, len, &out->analysis);

    out->intent = out->analysis.intent;
    out->complexity = out->analysis.complexity;

    /* 1. the intent's workflow */

    if (out->analysis.route != NULL) {
        out->kind = MST_ROUTE_TO_WORKFLOW;
        out->target = out->analysis.route;
        return MST_OK;
    }

    /* 2. the complexity tier's model */

    tier = mst_route_tier(out->complexity);

    if (!(flags & MST_ROUTE_WORKFLOW) && tier >= 0
        && rt->tier_model[tier] != NULL)
    {
        out->kind = MST_ROUTE_TO_MODEL;
        out->target = rt->tier_model[tier];
        return MST_OK;
    }

    /* 3. the default workflow */

    if (rt->default_workflow != NULL) {
        out->kind = MST_ROUTE_TO_WORKFLOW;
        out->target = rt->default_workflow;
        return MST_OK;
    }

    return mst_err(err, errlen, MST_NOTFOUND,
                   (flags & MST_ROUTE_WORKFLOW)
                   ? "found no route: configure maestro_intent_route or a "
                     "default workflow"
                   : "found no route: configure maestro_intent_route, "
                     "maestro_model_tier or a default workflow");
}


json_t *
mst_route_json(const mst_route_t *route)
{
    switch (route->kind) {

    case MST_ROUTE_TO_WORKFLOW:
        return json_pack("{s:s}", "workflow", route->target);

    case MST_ROUTE_TO_MODEL:
        return json_pack("{s:s}", "model", route->target);

    default:
        return json_null();
    }
}
