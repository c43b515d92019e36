/*
 * Copyright (C) Maestro authors
 */

/*
 * A message a WebSocket client sends (a text message, reassembled from
 * its frames and checked for UTF-8 by the protocol code), parsed and
 * checked here so the session glue only acts on it, and so the fuzzer
 * (tests/fuzz/fuzz_ws.c) reaches the same decisions behind libwslay:
 *
 *   {"type": "prompt_submission", "prompt": ..., ...}
 *        a submission: mst_request_submission() checks the rest
 *   {"type": "agent_action", "workflow_id": ID, "action": "cancel"}
 *        approve, resume and feedback are refused (unsupported_action)
 *   {"type": "subscribe", "workflow_id": ID, "last_event_id": N}
 */

#ifndef _MST_WS_MSG_H_INCLUDED_
#define _MST_WS_MSG_H_INCLUDED_

#include "mst_common.h"
#include "mst_request.h"

typedef enum {
    MST_WS_MSG_PROMPT = 1,
    MST_WS_MSG_CANCEL,
    MST_WS_MSG_SUBSCRIBE
} mst_ws_msg_type_t;

typedef struct {
    mst_ws_msg_type_t   type;
    json_t             *json;           /* the message, owned */
    const char         *workflow_id;    /* cancel, subscribe: a valid id,
                                           in json */
    uint64_t            last;           /* subscribe: after this event */
} mst_ws_msg_t;

/*
 * MST_OK and *m (mst_ws_msg_free() it), or MST_EINVAL and *e: its code
 * is invalid_json, missing_field, invalid_field or unsupported_action.
 */
int mst_ws_msg_parse(const char *text, size_t len, mst_ws_msg_t *m,
    mst_request_error_t *e);

void mst_ws_msg_free(mst_ws_msg_t *m);

#endif /* _MST_WS_MSG_H_INCLUDED_ */
