/*
 * Copyright (C) Maestro authors
 */

/* DESIGN: see mst_guard_request.h */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mst_guard_request.h"


/*
 * One string through the guard: holder[key] of an object, or
 * holder[index] of an array (key NULL). Anything but a string is left.
 */
static int
mst_guard_json(const mst_guard_t *g, const char *what, json_t *holder,
    const char *key, size_t index, int *changed, char *why, size_t whylen)
{
    int      rc;
    char    *checked;
    size_t   len;
    json_t  *t, *nt;

    t = key ? json_object_get(holder, key) : json_array_get(holder, index);

    if (!json_is_string(t)) {
        return MST_OK;
    }

    rc = mst_guard_text(g, what, json_string_value(t), json_string_length(t),
                        &checked, why, whylen);
    if (rc != MST_OK) {
        return rc;
    }

    len = strlen(checked);

    if (len == json_string_length(t)
        && memcmp(checked, json_string_value(t), len) == 0)
    {
        free(checked);
        return MST_OK;
    }

    nt = json_stringn(checked, len);
    free(checked);

    if (nt == NULL) {
        return mst_err(why, whylen, MST_ENOMEM, "out of memory");
    }

    rc = key ? json_object_set_new(holder, key, nt)
             : json_array_set_new(holder, index, nt);
    if (rc != 0) {
        return mst_err(why, whylen, MST_ENOMEM, "out of memory");
    }

    *changed = 1;

    return MST_OK;
}


int
mst_guard_submission(const mst_guard_t *g, json_t *req, json_t *context,
    int *changed, char *why, size_t whylen)
{
    int          rc;
    char         what[128];
    size_t       i;
    json_t      *item;
    const char  *name;

    rc = mst_guard_json(g, "the prompt", req, "prompt", 0, changed, why,
                        whylen);
    if (rc != MST_OK) {
        return rc;
    }

    json_array_foreach(context, i, item) {
        /* named by position: the name itself may be what is refused */
        snprintf(what, sizeof(what), "the name of context[%zu]", i);

        rc = mst_guard_json(g, what, item, "name", 0, changed, why, whylen);
        if (rc != MST_OK) {
            return rc;
        }

        name = json_string_value(json_object_get(item, "name"));
        snprintf(what, sizeof(what), "context[%zu] (\"%.64s\")", i,
                 name ? name : "");

        rc = mst_guard_json(g, what, item, "content", 0, changed, why,
                            whylen);
        if (rc != MST_OK) {
            return rc;
        }
    }

    return MST_OK;
}


int
mst_guard_openai(const mst_guard_t *g, json_t *body, int *changed,
    char *why, size_t whylen)
{
    int          rc;
    char         what[96];
    size_t       i, j;
    json_t      *msg, *content, *part, *input;
    const char  *role;

    json_array_foreach(json_object_get(body, "messages"), i, msg) {
        role = json_string_value(json_object_get(msg, "role"));
        content = json_object_get(msg, "content");

        snprintf(what, sizeof(what), "messages[%zu] (%.32s)", i,
                 role ? role : "no role");

        if (json_is_string(content)) {
            rc = mst_guard_json(g, what, msg, "content", 0, changed, why,
                                whylen);
            if (rc != MST_OK) {
                return rc;
            }

            continue;
        }

        json_array_foreach(content, j, part) {
            snprintf(what, sizeof(what), "messages[%zu] (%.32s) part %zu", i,
                     role ? role : "no role", j);

            rc = mst_guard_json(g, what, part, "text", 0, changed, why,
                                whylen);
            if (rc != MST_OK) {
                return rc;
            }
        }
    }

    input = json_object_get(body, "input");

    if (json_is_string(input)) {
        return mst_guard_json(g, "the input", body, "input", 0, changed, why,
                              whylen);
    }

    json_array_foreach(input, i, part) {
        snprintf(what, sizeof(what), "input[%zu]", i);

        rc = mst_guard_json(g, what, input, NULL, i, changed, why, whylen);
        if (rc != MST_OK) {
            return rc;
        }
    }

    return MST_OK;
}
