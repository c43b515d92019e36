/*
 * Copyright (C) Maestro authors
 */

/*
 * Deltas between two JSON values, for checkpoints that store what a step
 * changed instead of the whole state (mst_store_checkpoint.c).
 *
 * A delta node is one of:
 *   {"=": value}                          replace by value
 *   {"o": {key: node, ...}, "x": [key]}   object: changed keys, removed
 *   {"a": [[index, node], ...], "n": len} array: changed indices in
 *                                         increasing order, new length
 * ("x" and "n" only when needed). Nothing changed: no delta (NULL).
 *
 * The old value is usually a mst_json_tree_copy() of what a step read:
 * its containers are new but its leaves (strings, numbers) are shared,
 * so equal leaves are found by pointer and a large unchanged string (a
 * prompt) costs nothing. That holds because no code changes a leaf in
 * place (json_string_set() and the like are not used): a change replaces
 * the leaf.
 */

#ifndef _MST_JSON_DELTA_H_INCLUDED_
#define _MST_JSON_DELTA_H_INCLUDED_

#include "mst_common.h"

/* containers copied, leaves shared (increfed); NULL when out of memory */
json_t *mst_json_tree_copy(json_t *v);

/*
 * The delta turning a into b (new reference), NULL when they are equal;
 * *rc is MST_OK or MST_ENOMEM (then NULL as well).
 */
json_t *mst_json_delta(json_t *a, json_t *b, int *rc);

/*
 * Applies delta d (NULL or JSON null: nothing changed) to *v: the
 * containers of *v are changed in place (they must not be shared), values
 * are taken from d by reference; *v may be replaced. MST_OK, MST_EINVAL
 * (not a delta of *v) or MST_ENOMEM.
 */
int mst_json_delta_apply(json_t **v, json_t *d);

/*
 * How many bytes of compact JSON text applying d to a adds (negative:
 * removes), counting only the values d replaces, so its cost follows the
 * change, not the size of a. Keys and separators are estimated.
 */
long mst_json_delta_growth(json_t *a, json_t *d);

#endif /* _MST_JSON_DELTA_H_INCLUDED_ */
