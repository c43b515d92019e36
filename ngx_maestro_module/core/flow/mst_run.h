/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * mst_run is the durable workflow runner: every operation is one LMDB write
 * transaction that reads the workflow record and its last checkpoint,
 * applies the engine (mst_engine), and writes record, checkpoint and events
 * back together, so a crash at any point leaves the last committed state.
 * All functions here block (LMDB commits, plugin runs) and are called on
 * pool threads; the nginx glue only schedules them.
 *
 * Ownership: a running workflow is owned by one process (record "owner" =
 * pid, "epoch", "lease_until"). Every write checks owner and epoch (fencing):
 * a process that lost its lease gets MST_CONFLICT and drops its results.
 * A workflow whose owner is dead or whose lease expired is claimed by any
 * other process (mst_run_claim), which recovers running steps to pending and
 * goes on from the last checkpoint.
 *
 * Suspects: the recovered steps are suspects of the death (mst_engine.h);
 * each process runs its suspects one at a time, in its suspect lane
 * (mst_run_lane.c), so the next death while one runs is that step's own.
 *
 * Steps: a commit that finishes a step also begins the steps that became
 * ready (marks them running and builds their plugin input), and returns
 * them in mst_run_next_t, so the caller only posts them to the pool.
 *
 * Events: record "last_event_id" orders a workflow's events; every commit
 * appends workflow_update / agent_status / log_entry / token events; the
 * final commit appends "done" (complete, cancelled) or "error" (failed).
 * After any commit that appended events, env->notify() is called so the
 * glue can wake subscribers on every worker.
 *
 * A full store (mst_run_full.c): past the store's headroom a submission is
 * refused with MST_MAPFULL; past its reserve, or when a commit finds the
 * map full, a running workflow ends failed with the error code
 * "store_full" ("error_code" in the record, "code" in its "error" event).
 */

#ifndef _MST_RUN_H_INCLUDED_
#define _MST_RUN_H_INCLUDED_

#include "mst_store.h"
#include "mst_engine.h"
#include "mst_limits.h"
#include "mst_plugin.h"
#include "mst_llm.h"
#include "mst_gateway.h"
#include "mst_usage.h"


/*
 * A process's suspect lane (mst_run_lane.c): the token of the one suspect
 * step it runs, 0 when none; zeroed with the env.
 */
typedef struct {
    volatile uint64_t   holder;
    volatile uint64_t   seq;
} mst_run_lane_t;


/* what the runner needs from its process; set up once per process */
typedef struct {
    mst_store_t        *store;
    mst_gateway_t      *gw;             /* the providers, in order */
    mst_agent_t        *agents;         /* configured agents */
    size_t              nagents;
    mst_graph_t       **graphs;         /* configured named graphs */
    size_t              ngraphs;
    long                pid;            /* this process */
    int64_t             lease_ms;       /* maestro_lease_timeout */
    size_t              agent_log_keep; /* entries kept per agent */
    int64_t             flush_ms;       /* event batching interval */
    size_t              step_cap;       /* steps of a workflow begun at
                                           once, 0: no cap (mst_sched.h);
                                           atomic: the host adjusts it */
    size_t              event_keep;     /* unused in P0 (retention) */
    const mst_price_t  *prices;         /* maestro_llm_price */
    size_t              nprices;
    mst_limits_t        limits;         /* a running workflow's bounds */

    /* wake subscribers: called after a commit that appended events */
    void              (*notify)(void *arg, const char *id, uint64_t last);
    void               *notify_arg;

    /*
     * The plugins' LLM calls: the host's engine (the nginx worker's, on
     * its event loop), blocking the calling pool thread until it answers;
     * *used: the provider that did. NULL, or a gateway offline: the
     * offline provider answers (mst_offline_chat()).
     */
    int               (*llm_chat)(void *arg, json_t *request,
                                  const mst_llm_call_t *call,
                                  json_t **response, const char **used,
                                  char *err, size_t errlen);
    void               *llm_chat_arg;

    /*
     * Around a step's commit (NULL: none), on its pool thread, with the
     * step's "host" pointer (mst_run_step_t): the host orders its
     * commits there (one commit of a workflow at a time), so the store's
     * single write lock is shared fairly. commit_end follows every
     * commit_begin.
     */
    void              (*commit_begin)(void *arg, void *host);
    void              (*commit_end)(void *arg, void *host);
    void               *commit_arg;

    /* log to the host's error log (level: MAESTRO_LOG_*) */
    void              (*log)(void *arg, int level, const char *msg);
    void               *log_arg;

    mst_run_lane_t      lane;           /* this process's suspect lane */
} mst_run_env_t;

/* a step ready to run, with its plugin input, as returned by a commit */
typedef struct {
    char                node[65];
    int                 index;          /* -1 unless foreach */
    int                 attempt;        /* 1-based */
    int64_t             timeout_ms;
    char               *input;          /* plugin input JSON text (malloc) */
    const mst_agent_t  *agent;
    char                key_id[33];     /* the submitting API key's, or "":
                                           its model calls count there */
    uint64_t            lane;           /* a suspect's token in env->lane,
                                           else 0 */
    void               *host;           /* the host's, for commit hooks */
} mst_run_step_t;

/* what a commit tells the scheduler */
typedef struct {
    int                 status;         /* MST_ENGINE_* */
    mst_run_step_t     *steps;          /* steps to post now (malloc) */
    size_t              nsteps;
    int64_t             retry_in_ms;    /* >0: call mst_run_begin_ready()
                                           after this backoff */
    int                 lane_wait;      /* a suspect waits for the lane:
                                           sooner when it is free */
    int                 finished;       /* workflow reached a final state */
    uint64_t            epoch;
    long                prev_owner;     /* mst_run_claim(): whose it was
                                           (0: nobody's) */
} mst_run_next_t;

void mst_run_next_free(mst_run_next_t *next);

/* the agent and graph lookups (configured ones) */
const mst_agent_t *mst_run_agent(const mst_run_env_t *env, const char *name);
mst_graph_t *mst_run_graph(const mst_run_env_t *env, const char *name);

/*
 * A submission, validated by the caller: prompt (non-empty string),
 * context normalised to [{"name","content"}], user_id or NULL, the graph
 * (named or inline). Writes record (status queued) + first checkpoint +
 * events. id: MST_ID_LEN + 1 buffer. *rec: new reference to the record.
 */
int mst_run_create(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, char *id, json_t **rec, char *err, size_t errlen);

/*
 * mst_run_create() and mst_run_claim() in one transaction: the process
 * that accepts a workflow runs it; next gets its first steps. key_id and
 * team: the API key and team that submitted it (its agents' usage counts
 * against them), or NULL.
 */
int mst_run_submit(mst_run_env_t *env, const mst_graph_t *graph,
    const char *workflow_name, const char *prompt, json_t *context,
    const char *user_id, const char *key_id, const char *team, char *id,
    json_t **rec, mst_run_next_t *next, char *err, size_t errlen);

/*
 * Take ownership of a queued workflow, or of a running one whose owner is
 * dead (alive() says no), is this process but not running it here
 * (force_own), or whose lease expired. Recovers interrupted steps and
 * begins the ready ones (returned in next). MST_CONFLICT when someone
 * else holds it, MST_NOTFOUND, or MST_EINVAL when it is already final.
 */
typedef int (*mst_run_alive_pt)(long pid);
int mst_run_claim(mst_run_env_t *env, const char *id, int force_own,
    mst_run_alive_pt alive, mst_run_next_t *next, char *err, size_t errlen);

/*
 * Begin the pending steps of an owned workflow (after a retry backoff, or
 * while a suspect waits for the lane). When it begins none, nothing is
 * written.
 */
int mst_run_begin_ready(mst_run_env_t *env, const char *id, uint64_t epoch,
    mst_run_next_t *next, char *err, size_t errlen);

/* abandoned flag shared with the event loop: see mst_run_step_exec() */
#define MST_STEP_RUNNING     0
#define MST_STEP_COMMITTING  1
#define MST_STEP_ABANDONED   2

/*
 * Run one step on this thread: the plugin's run(), with a host context whose
 * events are flushed in batches, then commit the result (or the failure)
 * and begin the next ready steps. *state is an atomic (MST_STEP_*) the
 * event loop may set to ABANDONED on timeout; the commit happens only if
 * this thread moves it from RUNNING to COMMITTING first.
 */
int mst_run_step_exec(mst_run_env_t *env, const char *id, uint64_t epoch,
    const mst_run_step_t *step, volatile int *state, mst_run_next_t *next,
    char *err, size_t errlen);

/*
 * The end of a suspect step's run in this process (its token, 0: none):
 * the next suspect may begin. mst_run_step_exec() releases its step's;
 * the host releases the lane of a step it abandons (timeout) or never
 * runs (not posted). A token no longer held is ignored.
 */
void mst_run_lane_release(mst_run_env_t *env, uint64_t token);

/*
 * A step failed without completing (timeout, abandoned): record the
 * failure and apply the retry policy.
 */
int mst_run_step_failed(mst_run_env_t *env, const char *id, uint64_t epoch,
    const char *node, int index, const char *error, int retryable,
    mst_run_next_t *next, char *err, size_t errlen);

/*
 * End an owned workflow failed with the error code "store_full" (one small
 * write: the record and its final events), after a commit found the map
 * full. Step commits do this themselves once the store is past its
 * reserve (mst_store_level() RESERVE); this is for the caller to try again
 * when even that write found no room. MST_MAPFULL: still none.
 */
int mst_run_full(mst_run_env_t *env, const char *id, uint64_t epoch,
    mst_run_next_t *next, char *err, size_t errlen);

/*
 * Request cancellation. A queued workflow, or one whose owner is dead, is
 * cancelled at once (*final = 1); a running one is marked and its owner
 * stops at the next step boundary or when its plugin sees cancelled().
 * *rec: the record after the change.
 */
int mst_run_cancel(mst_run_env_t *env, const char *id, mst_run_alive_pt alive,
    json_t **rec, int *final, char *err, size_t errlen);

/*
 * Renew the leases of the given owned workflows (one transaction).
 * Workflows no longer owned (fenced) are reported through lost(id).
 */
int mst_run_renew(mst_run_env_t *env, const char *const *ids,
    const uint64_t *epochs, size_t n, void (*lost)(const char *id, void *arg),
    void *arg);

/*
 * Give up ownership of a workflow (graceful worker exit) so another
 * process claims it at once.
 */
int mst_run_release(mst_run_env_t *env, const char *id, uint64_t epoch);

/*
 * Ids of active workflows that this process could claim now: unowned ones,
 * and ones whose owner is dead or whose lease expired (this process's own
 * too, when not in mine[]: dropped after an error). *ids: JSON array of
 * strings.
 */
int mst_run_orphans(mst_run_env_t *env, mst_run_alive_pt alive,
    const char *const *mine, size_t nmine, size_t max, json_t **ids);

/*
 * Event retention (maestro_event_retention): drop the event logs of
 * workflows finished more than ttl_ms ago, looking at most at max records
 * after cursor (MST_ID_LEN + 1 buffer, "" to start; updated, "" when the
 * scan wrapped). The records and checkpoints stay; the record says
 * "events_pruned". *pruned: how many logs were dropped.
 */
int mst_run_prune(mst_run_env_t *env, int64_t ttl_ms, size_t max,
    char *cursor, size_t *pruned);

/*
 * A user's token usage and cost over all their workflows: {user_id,
 * prompt, completion, total, cost_usd (null: no priced model), by_model};
 * zeros for a user with none yet.
 */
int mst_run_user_usage(mst_run_env_t *env, const char *user, json_t **usage,
    char *err, size_t errlen);

/* the cost in USD of tokens of a model; < 0 when it has no price */
double mst_run_price(const mst_run_env_t *env, const char *model,
    long prompt_tokens, long completion_tokens);

/*
 * The census of running workflows by owner process, in memory that all
 * workers share (the glue's shared zone): each process counts what it
 * adopts and lets go; what a dead process still counts is "orphaned"
 * until another process claims it (mst_census_claimed()). A slot is
 * reused once its process is dead and counts nothing. Lock-free.
 */
#define MST_CENSUS_SLOTS  256

typedef struct {
    long                pid;
    long                active;
} mst_census_slot_t;

typedef struct {
    mst_census_slot_t   slots[MST_CENSUS_SLOTS];
} mst_census_t;

/* pid adopted (delta 1) or let go of (-1) a workflow */
void mst_census_add(mst_census_t *c, long pid, long delta,
    mst_run_alive_pt alive);
/* a workflow of prev (dead) was claimed by another process */
void mst_census_claimed(mst_census_t *c, long prev, mst_run_alive_pt alive);
/* the workflows of live processes, and those of dead ones */
void mst_census_count(mst_census_t *c, mst_run_alive_pt alive,
    long *active, long *orphaned);

/* the definition of the graph a workflow runs (rec: its record) */
int mst_run_graph_def(mst_run_env_t *env, const char *id, json_t *rec,
    json_t **def);

/* whether cancellation was requested (a read transaction) */
int mst_run_cancel_requested(mst_run_env_t *env, const char *id);

#endif /* _MST_RUN_H_INCLUDED_ */
