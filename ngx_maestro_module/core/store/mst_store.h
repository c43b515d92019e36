/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * mst_store is Maestro's LMDB storage: one environment, named sub-databases,
 * keys built for range scans (fixed-length workflow id + big-endian seq).
 *
 *   workflows    id                         -> workflow record (JSON text)
 *   checkpoints  id + be64(seq)             -> checkpoint (JSON text)
 *   events       id + be64(seq)             -> name '\0' data (JSON text)
 *   agent_logs   agent '\0' be64(ms) be32(n) -> log entry (JSON text)
 *   kv           ns '\0' key                -> bytes (plugins' memory)
 *   active       id                         -> "" (queued or running;
 *                                              kept by mst_store_wf_put)
 *   finished, finished_user                 the final ones, oldest first,
 *                                              overall and per user
 *                                              (mst_store_finished.c)
 *   parts        id kind name               -> a part of a workflow
 *                                              (JSON text; see below)
 *
 * Threads: the environment is opened once per process (after fork) with
 * MDB_NOTLS, so any thread may run a read transaction; LMDB serialises
 * write transactions across threads and processes. Callers on the nginx
 * event loop use read transactions only; writes run on pool threads.
 *
 * Errors: MDB_MAP_FULL becomes MST_MAPFULL, I/O errors MST_EIO; a failed
 * write transaction is aborted, so stored data is never half-written.
 * After a write that failed with MDB_MAP_FULL, LMDB refuses every call in
 * that transaction (MDB_BAD_TXN): those report MST_MAPFULL too, and so
 * does mst_txn_commit(), which aborts such a transaction.
 *
 * Headroom (conf->headroom, maestro_store_headroom): the last bytes of the
 * map are kept for what ends or removes work. mst_store_level() says how
 * full the store is: ROOM, CLOSED (past map - headroom: callers refuse new
 * work, with MST_MAPFULL) or RESERVE (past map - headroom / 2: running
 * work stops, and only deletes, cancels, leases and final writes go on).
 * The store does not refuse anything itself: callers decide what is new.
 * A sealed value that cannot be opened (conf->crypt) is MST_ECRYPT, never
 * its bytes; scans of many records (scan_active, scan) skip it as they
 * skip a record that does not parse, and log why.
 *
 * Event ids: the workflow record's "last_event_id" is the id of its last
 * event; mst_store_event_append() increments it in the record the caller
 * then writes back with mst_store_wf_put() in the same transaction.
 */

#ifndef _MST_STORE_H_INCLUDED_
#define _MST_STORE_H_INCLUDED_

#include "mst_common.h"
#include "mst_crypt.h"

typedef struct mst_store_s  mst_store_t;
typedef struct mst_txn_s    mst_txn_t;

typedef struct {
    const char  *path;          /* directory, created if missing */
    size_t       map_size;      /* bytes; maestro_store_size */
    int          sync;          /* 0: MDB_NOSYNC (survives process crash,
                                   not power loss) */
    unsigned     max_readers;   /* 0: default (512) */
    int          writemap;      /* 1: MDB_WRITEMAP (commits write no
                                   pages; a stray write can corrupt) */
    size_t       headroom;      /* bytes kept for deletes, cancels and
                                   final writes (see above); 0: none */

    /*
     * Sealing at rest (mst_crypt.h, maestro_store_encryption_key): with a
     * ring that has an active key, every value of workflows, checkpoints,
     * events, agent_logs, kv and feed is written sealed, with the record
     * kind and its LMDB key as AAD; values written before (plain) are
     * still read. NULL: values are written as they are, and a sealed one
     * read is MST_ECRYPT. The ring is borrowed: it outlives the store.
     */
    const mst_crypt_t  *crypt;

    /* why a sealed record could not be opened (never key bytes); may be
       NULL; called on the thread that read it */
    void       (*errlog)(void *arg, const char *msg);
    void        *errlog_arg;
} mst_store_conf_t;

/* open (creating sub-databases); err gets a message naming the path */
int mst_store_open(mst_store_t **store, const mst_store_conf_t *conf,
    char *err, size_t errlen);
void mst_store_close(mst_store_t *store);

/* remove stale reader slots of dead processes (after a kill -9) */
void mst_store_reader_check(mst_store_t *store);

/*
 * Map usage: bytes in use and map size. Pages LMDB freed (deleted or
 * rewritten records) are reused by later writes, so they are not counted
 * as used: used = (last page + 1 - free pages) * page size, free pages
 * being those no open reader's snapshot still sees.
 */
int mst_store_usage(mst_store_t *store, size_t *used, size_t *map_size);

#define MST_STORE_ROOM      0
#define MST_STORE_CLOSED    1   /* past map - headroom: no new work */
#define MST_STORE_RESERVE   2   /* past map - headroom / 2: work stops */

typedef struct {
    size_t       used;          /* as mst_store_usage() */
    size_t       map;
    size_t       free;          /* reusable free pages (not in used) */
    size_t       headroom;
    int          level;         /* MST_STORE_* */
} mst_store_space_t;

/* a measure now (a read transaction and a scan of LMDB's free list) */
int mst_store_space(mst_store_t *store, mst_store_space_t *space);

/*
 * MST_STORE_* from a measure at most MST_STORE_LEVEL_MS old (taken now
 * when older, on the calling thread); a write that found the map full
 * makes it RESERVE for a second, whatever a measure says. Any thread.
 */
#define MST_STORE_LEVEL_MS  50
int mst_store_level(mst_store_t *store);

/* the last measure mst_store_level() took (no transaction: for health);
   MST_NOTFOUND before the first */
int mst_store_space_last(mst_store_t *store, mst_store_space_t *space);

/* the first write failure of this transaction (MST_MAPFULL), or MST_OK */
int mst_txn_failed(const mst_txn_t *txn);

int mst_txn_begin(mst_store_t *store, int readonly, mst_txn_t **txn);
int mst_txn_commit(mst_txn_t *txn);     /* frees txn, also on failure */
void mst_txn_abort(mst_txn_t *txn);     /* frees txn; NULL is fine */

/* workflow records: *rec is a new reference the caller json_decref()s */
int mst_store_wf_get(mst_txn_t *txn, const char *id, json_t **rec);
int mst_store_wf_put(mst_txn_t *txn, const char *id, const json_t *rec);

/*
 * Whether a record's text holds "key":true, without parsing it: records
 * are written compact ("key":value, no spaces) and a string that holds
 * those characters has its quotes escaped, so the match is exact.
 * 1, 0, or an MST_* error.
 */
int mst_store_wf_flag(mst_txn_t *txn, const char *id, const char *key);

/*
 * A checkpoint read in this write transaction and not written back, given
 * to the parse cache again. prev: a mst_json_tree_copy() of it as read
 * (kept only when cp still equals it), or NULL: its text is made anew and
 * the next take checks it against the stored bytes as always, so a
 * changed one is only a miss.
 */
void mst_store_checkpoint_keep(mst_txn_t *txn, const char *id, uint64_t seq,
    const json_t *cp, json_t *prev);

typedef struct {
    const char  *status;        /* NULL: any */
    const char  *user_id;       /* NULL: any */
    const char  *cursor;        /* NULL: newest first; else an id: start
                                   after it (older) */
    size_t       limit;         /* 1..1000 */
} mst_wf_filter_t;

/*
 * Newest first. *items: new JSON array of records (without "graph");
 * next_cursor: id to pass as cursor for the next page, "" when none
 * (buffer of MST_ID_LEN + 1).
 */
int mst_store_wf_list(mst_txn_t *txn, const mst_wf_filter_t *filter,
    json_t **items, char *next_cursor);

/* calls cb for every record whose status is "queued" or "running";
   cb returns non-zero to stop */
typedef int (*mst_wf_scan_pt)(const char *id, json_t *rec, void *arg);
int mst_store_wf_scan_active(mst_txn_t *txn, mst_wf_scan_pt cb, void *arg);

/* checkpoints: a whole one */
int mst_store_checkpoint_put(mst_txn_t *txn, const char *id, uint64_t seq,
    const json_t *cp);

/*
 * The checkpoint that follows prev (the one at seq - 1 as read, usually a
 * mst_json_tree_copy() of it; NULL: written whole), stored as what
 * changed when the chain allows it (see mst_store_checkpoint.c).
 */
int mst_store_checkpoint_put_delta(mst_txn_t *txn, const char *id,
    uint64_t seq, const json_t *cp, json_t *prev);
/* *seq and *cp of the last checkpoint; MST_NOTFOUND when none */
int mst_store_checkpoint_last(mst_txn_t *txn, const char *id, uint64_t *seq,
    json_t **cp);
/* *list: JSON array of {"seq", "checkpoint"} oldest first */
int mst_store_checkpoint_list(mst_txn_t *txn, const char *id, json_t **list);

/*
 * A page of that list: the checkpoints with seq >= from, at most limit
 * of them, and no more once their bytes passed max_bytes (one at least).
 * *next: the from of the next page, 0 when this one is the last.
 */
int mst_store_checkpoint_page(mst_txn_t *txn, const char *id,
    uint64_t from, size_t limit, size_t max_bytes, json_t **list,
    uint64_t *next);

/*
 * Append an event: seq = rec.last_event_id + 1 (rec is updated; the caller
 * writes rec back). data is a JSON object; ts (ms) is added to it if absent.
 * *seq (may be NULL) gets the new id.
 */
int mst_store_event_append(mst_txn_t *txn, const char *id, json_t *rec,
    const char *name, json_t *data, uint64_t *seq);

/*
 * Events with seq > after, in order, at most max (0: all). The pointers
 * given to cb point into the map (zero-copy), or for a sealed event into
 * the transaction's buffer, and are valid until cb returns; data is not
 * NUL-terminated. cb returns non-zero to stop.
 */
typedef int (*mst_event_pt)(uint64_t seq, const char *name,
    const char *data, size_t len, void *arg);
int mst_store_event_range(mst_txn_t *txn, const char *id, uint64_t after,
    size_t max, mst_event_pt cb, void *arg);

/* agent logs: keeps at most keep entries per agent (oldest dropped) */
int mst_store_agent_log_append(mst_txn_t *txn, const char *agent,
    const json_t *entry, size_t keep);
/* newest last; *list: JSON array */
int mst_store_agent_log_list(mst_txn_t *txn, const char *agent,
    size_t limit, json_t **list);

/* plugins' key-value namespaces; *value is malloc()ed and NUL-terminated */
int mst_store_kv_get(mst_txn_t *txn, const char *ns, const char *key,
    char **value, size_t *len);
int mst_store_kv_put(mst_txn_t *txn, const char *ns, const char *key,
    const char *value, size_t len);

/* delete a key of ns (none there: MST_OK) */
int mst_store_kv_delete(mst_txn_t *txn, const char *ns, const char *key);

/* delete every key of ns that starts with prefix ("" : the whole ns) */
int mst_store_kv_delete_prefix(mst_txn_t *txn, const char *ns,
    const char *prefix);

/*
 * A workflow's parts: what is large, written once, or one of many, kept
 * apart from the record that every step rewrites: its inline graph
 * (MST_PART_GRAPH, name ""), its prompt (MST_PART_PROMPT, ""), one entry
 * per agent node (MST_PART_AGENT, the node). A step writes the entries
 * it changed, so its cost follows what it did, not the graph's size.
 * Records written before the parts hold "agents" and "prompt" themselves.
 */
#define MST_PART_AGENT   'a'
#define MST_PART_GRAPH   'g'
#define MST_PART_PROMPT  'p'

int mst_store_part_put(mst_txn_t *txn, const char *id, int kind,
    const char *name, const json_t *value);
/* *value: new reference; MST_NOTFOUND when absent */
int mst_store_part_get(mst_txn_t *txn, const char *id, int kind,
    const char *name, json_t **value);
/* *parts: new object, name -> value, of every part of that kind */
int mst_store_part_all(mst_txn_t *txn, const char *id, int kind,
    json_t **parts);

/*
 * The record as the API shows it: "agents" and "prompt" from the parts
 * when the record does not hold them (a record written before them does).
 */
int mst_store_wf_attach(mst_txn_t *txn, const char *id, json_t *rec);

/* delete a workflow with its checkpoints, events and parts (retention) */
int mst_store_wf_delete(mst_txn_t *txn, const char *id);

/*
 * The finished index (mst_store_finished.c), for retention: final
 * workflows by finished_at, overall and per user (a user is the first
 * MST_FIN_USER_LEN bytes of SHA-256(user_id)).
 */
#define MST_FIN_USER_LEN  16

typedef struct {
    char           id[MST_ID_LEN + 1];
    int64_t        finished_at;
    unsigned char  user[MST_FIN_USER_LEN];
    int            has_user;
} mst_fin_t;

int mst_store_fin_user_hash(const char *user_id, unsigned char *user);

/* the oldest of all (user NULL) or of a user; MST_NOTFOUND when none */
int mst_store_fin_oldest(mst_txn_t *txn, const unsigned char *user,
    mst_fin_t *f);

/* how many, of all (user NULL, O(1)) or of a user */
int mst_store_fin_count(mst_txn_t *txn, const unsigned char *user,
    size_t *n);

/* the next user after after (NULL: the first) with its count;
   MST_NOTFOUND past the last */
int mst_store_fin_next_user(mst_txn_t *txn, const unsigned char *after,
    unsigned char *user, size_t *n);

/*
 * Delete f's workflow (record, checkpoints, events) when its record is
 * still the final one f names (one that cannot be read goes too); an
 * entry whose record is gone or differs is dropped alone and
 * MST_NOTFOUND returned.
 */
int mst_store_fin_expire(mst_txn_t *txn, const mst_fin_t *f);

/*
 * Index up to max records written before the index existed, resuming
 * where the last call stopped; *done once all are.
 */
int mst_store_fin_backfill(mst_txn_t *txn, size_t max, int *done);

/*
 * Bytes the data takes, as this transaction sees it (the pages of every
 * sub-database, so a write transaction's own deletions count at once),
 * and the map size: what store pressure compares with its mark. Free
 * pages an old reader still pins are not in it; mst_store_usage(), the
 * headroom's measure, counts them as used.
 */
int mst_store_live(mst_txn_t *txn, size_t *live, size_t *map_size);

/* delete a workflow's events only (maestro_event_retention) */
int mst_store_event_delete(mst_txn_t *txn, const char *id);

/*
 * Records in id (creation) order, oldest first, starting after cursor
 * ("" or NULL: from the first); at most max. cb as for scan_active.
 */
int mst_store_wf_scan(mst_txn_t *txn, const char *cursor, size_t max,
    mst_wf_scan_pt cb, void *arg);

/* API keys (mst_apikey.h), by id of up to MST_STORE_KEY_ID_MAX bytes */
#define MST_STORE_KEY_ID_MAX  64
int mst_store_key_get(mst_txn_t *txn, const char *id, json_t **rec);

/*
 * The same for a request: *rec is a new reference to a record this thread
 * may share with its cache (see mst_store_key.c): read it, never change
 * it. mst_store_key_cache_clear() drops the thread's cache.
 */
int mst_store_key_get_shared(mst_txn_t *txn, const char *id, json_t **rec);
void mst_store_key_cache_clear(void);

/* create: MST_EXISTS when the id is taken */
int mst_store_key_put(mst_txn_t *txn, const char *id, const json_t *rec,
    int create);

/* delete a key's record (erasure; a revocation keeps it) */
int mst_store_key_delete(mst_txn_t *txn, const char *id);

/*
 * Up to max records in id order after cursor (NULL: from the first),
 * those of user_id only unless it is NULL; next gets the cursor of the
 * next page (MST_STORE_KEY_ID_MAX + 1 bytes), "" at the end.
 */
int mst_store_key_list(mst_txn_t *txn, const char *user_id,
    const char *cursor, size_t max, json_t **list, char *next);

#endif /* _MST_STORE_H_INCLUDED_ */
