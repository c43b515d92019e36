/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * Loads one agent plugin (runs at configuration time, in the nginx master
 * or a test; never on the event loop of a worker):
 *
 *   dlopen(RTLD_NOW | RTLD_LOCAL)   unresolved symbols fail here, not later
 *   dlsym(maestro_plugin_entry)     the one symbol a plugin exports
 *   entry(host ABI)                 a static descriptor, or NULL
 *   checks                          ABI version, name, run(), capabilities
 *   config                          parsed with jansson, must be an object
 *   init(config)                    the plugin's own verdict on its config
 *
 * Every refusal starts with 'plugin "<path>": ' so `nginx -t` names the
 * file, then says why. On failure the agent is left zeroed and the shared
 * object is closed, so the caller has nothing to release.
 *
 * Threads: the agent is read-only once loaded; run() is called through
 * agent->plugin on pool threads without any locking here.
 */

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "mst_memstat.h"
#include "mst_plugin.h"


static void mst_plugin_release(mst_agent_t *agent);
static const char *mst_plugin_basename(const char *path);


int
mst_agent_load(mst_agent_t *agent, const char *name, const char *path,
    const char *config_json, const maestro_host_t *host, char *err,
    size_t errlen)
{
    int                       rc;
    char                      perr[MST_ERRLEN];
    void                     *sym;
    json_t                   *caps, *v;
    size_t                    i;
    const char               *text;
    json_error_t              jerr;
    maestro_plugin_entry_pt   entry;

    memset(agent, 0, sizeof(mst_agent_t));

    /* configuration time, one thread: before any step is counted */
    mst_memstat_init();

    if (name == NULL || path == NULL || *path == '\0') {
        return mst_err(err, errlen, MST_EINVAL,
                       "plugin: no agent name or plugin path given");
    }

    /* the path as the caller resolved it: messages and describe() show
       the file the configuration named, not a symlink's target */

    agent->name = strdup(name);
    agent->path = strdup(path);

    if (agent->name == NULL || agent->path == NULL) {
        mst_plugin_release(agent);
        return mst_err(err, errlen, MST_ENOMEM,
                       "plugin \"%s\": out of memory", path);
    }

    /* the loader */

    dlerror();
    agent->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (agent->handle == NULL) {
        text = dlerror();
        mst_plugin_release(agent);
        return mst_err(err, errlen, MST_ERROR,
                       "plugin \"%s\": cannot open: %s", path,
                       text ? text : "unknown dlopen() error");
    }

    dlerror();
    sym = dlsym(agent->handle, MAESTRO_PLUGIN_ENTRY);

    if (sym == NULL) {
        mst_plugin_release(agent);
        return mst_err(err, errlen, MST_ERROR,
                       "plugin \"%s\": no " MAESTRO_PLUGIN_ENTRY
                       " symbol (not a Maestro plugin, or not exported "
                       "with MAESTRO_EXPORT)", path);
    }

    /* ISO C has no object-to-function pointer cast; POSIX guarantees it */
    memcpy(&entry, &sym, sizeof(entry));

    agent->plugin = entry(MAESTRO_PLUGIN_ABI_VERSION);

    if (agent->plugin == NULL) {
        mst_plugin_release(agent);
        return mst_err(err, errlen, MST_ERROR,
                       "plugin \"%s\": " MAESTRO_PLUGIN_ENTRY "() returned "
                       "NULL: the plugin cannot work with host ABI "
                       "version %d", path, MAESTRO_PLUGIN_ABI_VERSION);
    }

    /* the descriptor */

    if (agent->plugin->abi_version != MAESTRO_PLUGIN_ABI_VERSION) {
        rc = mst_err(err, errlen, MST_ERROR,
                     "plugin \"%s\": plugin ABI version %u, host speaks %d",
                     path, (unsigned) agent->plugin->abi_version,
                     MAESTRO_PLUGIN_ABI_VERSION);
        mst_plugin_release(agent);
        return rc;
    }

    if (agent->plugin->name == NULL || agent->plugin->name[0] == '\0') {
        mst_plugin_release(agent);
        return mst_err(err, errlen, MST_ERROR,
                       "plugin \"%s\": the descriptor has no name", path);
    }

    if (agent->plugin->run == NULL) {
        rc = mst_err(err, errlen, MST_ERROR,
                     "plugin \"%s\": plugin \"%s\" has no run()",
                     path, agent->plugin->name);
        mst_plugin_release(agent);
        return rc;
    }

    if (agent->plugin->capabilities != NULL) {
        caps = json_loads(agent->plugin->capabilities, JSON_REJECT_DUPLICATES,
                          &jerr);
        rc = MST_OK;

        if (caps == NULL) {
            rc = mst_err(err, errlen, MST_ERROR,
                         "plugin \"%s\": bad capabilities JSON: %s "
                         "(line %d, column %d)",
                         path, jerr.text, jerr.line, jerr.column);

        } else if (!json_is_array(caps)) {
            rc = mst_err(err, errlen, MST_ERROR,
                         "plugin \"%s\": bad capabilities JSON: "
                         "expected an array of strings", path);

        } else {
            json_array_foreach(caps, i, v) {
                if (!json_is_string(v)) {
                    rc = mst_err(err, errlen, MST_ERROR,
                                 "plugin \"%s\": bad capabilities JSON: "
                                 "item %zu is not a string", path, i);
                    break;
                }
            }
        }

        json_decref(caps);

        if (rc != MST_OK) {
            mst_plugin_release(agent);
            return rc;
        }
    }

    /* the agent's configuration */

    text = (config_json != NULL) ? config_json : "{}";

    agent->config = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

    if (agent->config == NULL) {
        rc = mst_err(err, errlen, MST_EINVAL,
                     "plugin \"%s\": agent \"%s\": config is not valid JSON: "
                     "%s (line %d, column %d)",
                     path, name, jerr.text, jerr.line, jerr.column);
        mst_plugin_release(agent);
        return rc;
    }

    if (!json_is_object(agent->config)) {
        rc = mst_err(err, errlen, MST_EINVAL,
                     "plugin \"%s\": agent \"%s\": config is not a JSON "
                     "object", path, name);
        mst_plugin_release(agent);
        return rc;
    }

    if (agent->plugin->init == NULL) {
        return MST_OK;
    }

    perr[0] = '\0';

    rc = agent->plugin->init(host, text, &agent->data, perr, sizeof(perr));

    if (rc != MAESTRO_OK) {
        perr[sizeof(perr) - 1] = '\0';
        agent->data = NULL;
        rc = mst_err(err, errlen, MST_ERROR,
                     "plugin \"%s\": agent \"%s\": init failed: %s", path,
                     name, perr[0] ? perr : mst_plugin_strerror(rc));
        mst_plugin_release(agent);
        return rc;
    }

    return MST_OK;
}


void
mst_agent_unload(mst_agent_t *agent)
{
    if (agent == NULL) {
        return;
    }

    if (agent->plugin != NULL && agent->plugin->fini != NULL) {
        agent->plugin->fini(agent->data);
    }

    agent->data = NULL;

    mst_plugin_release(agent);
}


json_t *
mst_agent_describe(const mst_agent_t *agent)
{
    json_t                  *caps;
    const maestro_plugin_t  *p;

    if (agent == NULL || agent->plugin == NULL) {
        return NULL;
    }

    p = agent->plugin;

    caps = NULL;

    if (p->capabilities != NULL) {
        /* validated at load */
        caps = json_loads(p->capabilities, 0, NULL);
    }

    if (caps == NULL) {
        caps = json_array();
    }

    return json_pack("{s:s, s:s, s:s, s:s, s:o}",
                     "name", agent->name,
                     "plugin", mst_plugin_basename(agent->path),
                     "version", p->version ? p->version : "",
                     "description", p->description ? p->description : "",
                     "capabilities", caps);
}


/* frees what mst_agent_load() got so far and zeroes the agent */

static void
mst_plugin_release(mst_agent_t *agent)
{
    if (agent->handle != NULL) {
        dlclose(agent->handle);
    }

    json_decref(agent->config);
    free(agent->name);
    free(agent->path);

    memset(agent, 0, sizeof(mst_agent_t));
}


static const char *
mst_plugin_basename(const char *path)
{
    const char  *slash;

    slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}


/* the plugin ABI's codes: the host's strerror() and init() failures */

const char *
mst_plugin_strerror(int rc)
{
    switch (rc) {
    case MAESTRO_OK:         return "success";
    case MAESTRO_ERROR:      return "failure";
    case MAESTRO_EINVAL:     return "invalid argument";
    case MAESTRO_ENOMEM:     return "out of memory";
    case MAESTRO_ECANCELLED: return "cancelled";
    case MAESTRO_ETIMEDOUT:  return "timed out";
    case MAESTRO_ENOTFOUND:  return "not found";
    case MAESTRO_EIO:        return "storage error";
    case MAESTRO_ELLM:       return "LLM provider failed";
    case MAESTRO_EHTTP:      return "HTTP request failed";
    case MAESTRO_EPERMANENT: return "permanent failure";
    default:                 return "unknown error";
    }
}
