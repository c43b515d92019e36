/*
 * Copyright (C) Maestro authors
 */

/*
 * The store's internals, shared by the files that implement parts of it
 * (mst_store.c, mst_feed.c). Nothing outside the store includes this.
 */

#ifndef _MST_STORE_INT_H_INCLUDED_
#define _MST_STORE_INT_H_INCLUDED_

#include <pthread.h>
#include <lmdb.h>

#include "mst_store.h"


#define MST_STORE_MAXDBS        10
#define MST_STORE_MAXREADERS    512
#define MST_STORE_KEY_MAX       511     /* LMDB's default max key size */
#define MST_STORE_SEQ_KEY_LEN   (MST_ID_LEN + 8)
#define MST_STORE_LOG_SUFFIX    12      /* be64(ms) + be32(n) */
#define MST_STORE_LIST_MAX      1000


struct mst_store_s {
    MDB_env          *env;
    MDB_dbi           wf;
    MDB_dbi           cp;
    MDB_dbi           ev;
    MDB_dbi           log;
    MDB_dbi           kv;
    MDB_dbi           act;      /* ids of queued / running workflows */
    MDB_dbi           feed;     /* every workflow's status changes */
    size_t            maxkey;
    int               active;       /* open transactions, under lock */
    pthread_mutex_t   lock;
};


struct mst_txn_s {
    MDB_txn          *txn;
    mst_store_t      *store;
    int               readonly;
};



/* an LMDB return code as MST_* */
int mst_store_rc(int rc);

void mst_store_put_be64(unsigned char *p, uint64_t v);
uint64_t mst_store_get_be64(const unsigned char *p);

#endif /* _MST_STORE_INT_H_INCLUDED_ */
