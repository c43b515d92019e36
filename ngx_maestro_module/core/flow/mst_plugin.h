/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The plugin loader: dlopen() a plugin at configuration time, find its one
 * entry point, check its ABI version and descriptor, and run its init() with
 * the agent's JSON configuration. Every refusal says which file and why, so
 * `nginx -t` can print it: "cannot open", "no maestro_plugin_entry",
 * "ABI version 7, host speaks 1", "no run()", "init failed: ...".
 */

#ifndef _MST_PLUGIN_H_INCLUDED_
#define _MST_PLUGIN_H_INCLUDED_

#include "mst_common.h"
#include "../../plugins/include/maestro_plugin.h"

typedef struct {
    char                    *name;      /* agent name (maestro_agent NAME) */
    char                    *path;      /* resolved plugin file */
    json_t                  *config;    /* agent configuration object */
    void                    *handle;    /* dlopen() handle */
    const maestro_plugin_t  *plugin;
    void                    *data;      /* what plugin->init() returned */
} mst_agent_t;

/*
 * Load the plugin at path and configure an agent. config_json may be NULL
 * ("{}"). On failure, err names the file and the reason and *agent is left
 * clean (nothing to unload).
 */
int mst_agent_load(mst_agent_t *agent, const char *name, const char *path,
    const char *config_json, const maestro_host_t *host, char *err,
    size_t errlen);

/* fini() and dlclose(); safe on a zeroed agent */
void mst_agent_unload(mst_agent_t *agent);

/* {"name", "plugin", "version", "description", "capabilities": [...]} */
json_t *mst_agent_describe(const mst_agent_t *agent);

/* a MAESTRO_* code in words: the host's strerror() */
const char *mst_plugin_strerror(int rc);

#endif /* _MST_PLUGIN_H_INCLUDED_ */
