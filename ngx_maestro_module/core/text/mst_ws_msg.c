/*
 * Copyright (C) Maestro authors
 */

/*
 * A WebSocket client's message: parsed, its type and fields checked
 * (see mst_ws_msg.h).
 */

#include <string.h>

#include "mst_ws_msg.h"


static int mst_ws_msg_action(mst_ws_msg_t *m, mst_request_error_t *e);
static int mst_ws_msg_subscribe(mst_ws_msg_t *m, mst_request_error_t *e);


int
mst_ws_msg_parse(const char *text, size_t len, mst_ws_msg_t *m,
    mst_request_error_t *e)
{
    int          rc;
    json_t      *j;
    const char  *type;

    memset(m, 0, sizeof(mst_ws_msg_t));

    /* the same parser and limits as a request body */
    j = mst_request_parse(text, len, e);
    if (j == NULL) {
        return MST_EINVAL;
    }

    m->json = j;

    type = json_string_value(json_object_get(j, "type"));

    if (type == NULL) {
        rc = mst_request_refuse(e, "missing_field", "type",
                                "\"type\" is required");

    } else if (strcmp(type, "prompt_submission") == 0) {
        m->type = MST_WS_MSG_PROMPT;
        rc = MST_OK;

    } else if (strcmp(type, "agent_action") == 0) {
        rc = mst_ws_msg_action(m, e);

    } else if (strcmp(type, "subscribe") == 0) {
        rc = mst_ws_msg_subscribe(m, e);

    } else {
        rc = mst_request_refuse(e, "invalid_field", "type",
                                "unknown message type \"%.64s\"", type);
    }

    if (rc != MST_OK) {
        mst_ws_msg_free(m);
    }

    return rc;
}


static int
mst_ws_msg_action(mst_ws_msg_t *m, mst_request_error_t *e)
{
    const char  *id, *action;

    id = json_string_value(json_object_get(m->json, "workflow_id"));
    action = json_string_value(json_object_get(m->json, "action"));

    if (id == NULL || !mst_id_valid(id, strlen(id))) {
        return mst_request_refuse(e, "invalid_field", "workflow_id",
                                  "\"workflow_id\" must be a workflow id");
    }

    if (action == NULL) {
        return mst_request_refuse(e, "missing_field", "action",
                                  "\"action\" is required");
    }

    if (strcmp(action, "approve") == 0 || strcmp(action, "resume") == 0
        || strcmp(action, "feedback") == 0)
    {
        /* human-in-the-loop steps do not exist yet: say so */
        return mst_request_refuse(e, "unsupported_action", "action",
                                  "\"%s\" needs a workflow step that waits "
                                  "for a human, which Maestro does not have "
                                  "yet", action);
    }

    if (strcmp(action, "cancel") != 0) {
        return mst_request_refuse(e, "invalid_field", "action",
                                  "\"action\" must be cancel, approve, "
                                  "resume or feedback");
    }

    m->type = MST_WS_MSG_CANCEL;
    m->workflow_id = id;

    return MST_OK;
}


static int
mst_ws_msg_subscribe(mst_ws_msg_t *m, mst_request_error_t *e)
{
    json_t      *v;
    const char  *id;

    id = json_string_value(json_object_get(m->json, "workflow_id"));
    v = json_object_get(m->json, "last_event_id");

    if (id == NULL || !mst_id_valid(id, strlen(id))
        || (v != NULL && !json_is_integer(v)))
    {
        return mst_request_refuse(e, "invalid_field", "workflow_id",
                                  "subscribe needs a \"workflow_id\" and an "
                                  "integer \"last_event_id\"");
    }

    m->type = MST_WS_MSG_SUBSCRIBE;
    m->workflow_id = id;
    m->last = json_is_integer(v) && json_integer_value(v) > 0
              ? (uint64_t) json_integer_value(v) : 0;

    return MST_OK;
}


void
mst_ws_msg_free(mst_ws_msg_t *m)
{
    json_decref(m->json);
    m->json = NULL;
}
