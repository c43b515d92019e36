/*
 * Copyright (C) Maestro authors
 */

/*
 * API keys: the secret's shape and check (revoked, expired, rotation
 * grace), the strict create body, the view without hashes, and the
 * records in the store.
 */

#include "mst_test_store.h"
#include "mst_apikey.h"


#define T_NOW  1700000000000LL


static json_t *
t_key(const char *body, mst_apikey_secret_t *s)
{
    char     err[MST_ERRLEN];
    json_t  *req, *rec;

    assert_int_equal(mst_apikey_generate(s), MST_OK);
    req = json_loads(body, 0, NULL);
    assert_non_null(req);
    assert_int_equal(mst_apikey_create(req, s, T_NOW, &rec, err,
                                       sizeof(err)), MST_OK);
    json_decref(req);

    return rec;
}


static void
test_secret_shape(void **state)
{
    char                 id[MST_APIKEY_ID_LEN + 1];
    char                 hash[MST_APIKEY_HASH_HEX + 1];
    mst_apikey_secret_t  a, b;

    assert_int_equal(mst_apikey_generate(&a), MST_OK);
    assert_int_equal(mst_apikey_generate(&b), MST_OK);

    assert_int_equal(strlen(a.token), MST_APIKEY_TOKEN_LEN);
    assert_int_equal(strncmp(a.token, "mk_", 3), 0);
    assert_int_equal(strlen(a.id), MST_APIKEY_ID_LEN);
    assert_int_equal(strlen(a.hash), MST_APIKEY_HASH_HEX);
    assert_string_not_equal(a.token, b.token);
    assert_string_not_equal(a.id, b.id);

    /* the hash is of the secret, never the secret itself */
    assert_null(strstr(a.token, a.hash));

    assert_true(mst_apikey_looks_like(a.token, strlen(a.token)));
    assert_int_equal(mst_apikey_parse(a.token, strlen(a.token), id, hash),
                     MST_OK);
    assert_string_equal(id, a.id);
    assert_string_equal(hash, a.hash);

    /* a cut, a wrong character, a JWT: not a key */
    b = a;
    assert_false(mst_apikey_looks_like(a.token, strlen(a.token) - 1));
    a.token[10] = 'G';
    assert_false(mst_apikey_looks_like(a.token, strlen(a.token)));
    a.token[10] = '0';
    a.token[MST_APIKEY_TOKEN_LEN - 1] = '.';
    assert_false(mst_apikey_looks_like(a.token, strlen(a.token)));
    assert_int_equal(mst_apikey_parse(a.token, strlen(a.token), id, hash),
                     MST_EINVAL);
    assert_false(mst_apikey_looks_like("eyJ.eyJ.sig", 11));

    /* rotation keeps the id, changes the secret */
    a = b;
    assert_int_equal(mst_apikey_regenerate(&b, a.id), MST_OK);
    assert_string_equal(b.id, a.id);
    assert_int_equal(strncmp(b.token, a.token, 3 + MST_APIKEY_ID_HEX), 0);
    assert_string_not_equal(b.token, a.token);
    assert_string_not_equal(b.hash, a.hash);
    assert_int_equal(mst_apikey_regenerate(&b, "nope"), MST_EINVAL);
}


static void
test_check(void **state)
{
    char                 why[MST_ERRLEN], id[MST_APIKEY_ID_LEN + 1];
    char                 hash[MST_APIKEY_HASH_HEX + 1];
    json_t              *rec;
    mst_apikey_secret_t  s, s2;

    rec = t_key("{\"user_id\":\"alice\",\"expires_in\":60}", &s);

    assert_int_equal(mst_apikey_check(rec, s.hash, T_NOW, why, sizeof(why)),
                     MST_OK);

    /* wrong secret: same id, other hash */
    assert_int_equal(mst_apikey_generate(&s2), MST_OK);
    assert_int_equal(mst_apikey_check(rec, s2.hash, T_NOW, why,
                                      sizeof(why)), MST_EDENIED);
    assert_string_equal(why, "wrong secret");

    /* expiry: valid until the last ms before expires_at */
    assert_int_equal(mst_apikey_check(rec, s.hash, T_NOW + 59999, why,
                                      sizeof(why)), MST_OK);
    assert_int_equal(mst_apikey_check(rec, s.hash, T_NOW + 60000, why,
                                      sizeof(why)), MST_EDENIED);
    assert_string_equal(why, "expired");

    /* rotation with 10 s of grace: both work, then only the new one */
    assert_int_equal(mst_apikey_regenerate(&s2, s.id), MST_OK);
    assert_int_equal(mst_apikey_rotate(rec, &s2, T_NOW, 10000, why,
                                       sizeof(why)), MST_OK);
    assert_int_equal(mst_apikey_check(rec, s2.hash, T_NOW, why,
                                      sizeof(why)), MST_OK);
    assert_int_equal(mst_apikey_check(rec, s.hash, T_NOW + 9999, why,
                                      sizeof(why)), MST_OK);
    assert_int_equal(mst_apikey_check(rec, s.hash, T_NOW + 10000, why,
                                      sizeof(why)), MST_EDENIED);
    assert_string_equal(why, "wrong secret");

    /* grace 0: the old secret stops at once; out of range: refused */
    assert_int_equal(mst_apikey_rotate(rec, &s, T_NOW, 0, why,
                                       sizeof(why)), MST_OK);
    assert_int_equal(mst_apikey_check(rec, s2.hash, T_NOW, why,
                                      sizeof(why)), MST_EDENIED);
    assert_int_equal(mst_apikey_rotate(rec, &s, T_NOW, -1, why,
                                       sizeof(why)), MST_EINVAL);
    assert_int_equal(mst_apikey_rotate(rec, &s, T_NOW,
                                       MST_APIKEY_GRACE_MAX + 1, why,
                                       sizeof(why)), MST_EINVAL);

    /* revoked: refused with the right secret, and no grace left */
    assert_int_equal(mst_apikey_rotate(rec, &s2, T_NOW, 10000, why,
                                       sizeof(why)), MST_OK);
    assert_int_equal(mst_apikey_revoke(rec, T_NOW + 1), MST_OK);
    assert_int_equal(mst_apikey_revoke(rec, T_NOW + 2), MST_EXISTS);
    assert_int_equal(mst_apikey_check(rec, s2.hash, T_NOW + 1, why,
                                      sizeof(why)), MST_EDENIED);
    assert_string_equal(why, "revoked");
    assert_int_equal(mst_apikey_check(rec, s.hash, T_NOW + 1, why,
                                      sizeof(why)), MST_EDENIED);
    assert_string_equal(why, "wrong secret");

    /* a presented token parses to the stored hash */
    assert_int_equal(mst_apikey_parse(s2.token, strlen(s2.token), id, hash),
                     MST_OK);
    assert_string_equal(hash, s2.hash);

    json_decref(rec);
}


static void
test_create_strict(void **state)
{
    size_t               i;
    char                 err[MST_ERRLEN];
    json_t              *req, *rec;
    mst_apikey_secret_t  s;

    static const struct {
        const char  *body;
        const char  *err;
    } bad[] = {
        { "[]", "the body must be a JSON object" },
        { "{}", "user_id: a string of 1..128 characters is required" },
        { "{\"user_id\":\"\"}",
          "user_id: a string of 1..128 characters is required" },
        { "{\"user_id\":\"a\",\"nmae\":\"x\"}", "nmae: not a field of a key" },
        { "{\"user_id\":\"a\",\"team\":7}",
          "team: a string of 1..128 characters" },
        { "{\"user_id\":\"a\",\"workflows\":\"all\"}",
          "workflows: null or an array of up to 100 names" },
        { "{\"user_id\":\"a\",\"models\":[1]}",
          "models: null or an array of up to 100 names" },
        { "{\"user_id\":\"a\",\"limits\":{\"rpm\":-1}}",
          "limits: an object of rpm, tpm, tpd, max_parallel (integers "
          ">= 0)" },
        { "{\"user_id\":\"a\",\"limits\":{\"rps\":1}}",
          "limits: an object of rpm, tpm, tpd, max_parallel (integers "
          ">= 0)" },
        { "{\"user_id\":\"a\",\"budget_usd\":-0.5}", "budget_usd: a number "
          ">= 0" },
        { "{\"user_id\":\"a\",\"budget_period\":\"year\"}",
          "budget_period: \"day\", \"month\" or \"total\"" },
        { "{\"user_id\":\"a\",\"expires_in\":0}",
          "expires_in: seconds, 1..315360000" },
        { "{\"user_id\":\"a\",\"hash\":\"00\"}", "hash: not a field of a key" },
    };

    assert_int_equal(mst_apikey_generate(&s), MST_OK);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req = json_loads(bad[i].body, 0, NULL);
        assert_non_null(req);
        rec = (json_t *) 1;
        assert_int_equal(mst_apikey_create(req, &s, T_NOW, &rec, err,
                                           sizeof(err)), MST_EINVAL);
        assert_null(rec);
        assert_string_equal(err, bad[i].err);
        json_decref(req);
    }
}


static void
test_view_allows(void **state)
{
    char                *text;
    json_t              *rec, *v;
    mst_apikey_secret_t  s;

    rec = t_key("{\"user_id\":\"bob\",\"team\":\"red\",\"name\":\"ci\","
                "\"workflows\":[\"research\"],\"budget_usd\":5,"
                "\"limits\":{\"rpm\":10,\"max_parallel\":2}}", &s);

    assert_string_equal(json_string_value(json_object_get(rec,
                        "budget_period")), "month");
    assert_true(json_is_null(json_object_get(rec, "expires_at")));
    assert_int_equal(json_integer_value(json_object_get(rec, "created_at")),
                     T_NOW);

    v = mst_apikey_view(rec, T_NOW);
    text = json_dumps(v, JSON_COMPACT);
    assert_null(strstr(text, s.hash));
    assert_null(json_object_get(v, "hash"));
    assert_null(json_object_get(v, "grace_hash"));
    assert_string_equal(json_string_value(json_object_get(v, "status")),
                        "active");
    assert_string_equal(json_string_value(json_object_get(v, "team")),
                        "red");
    free(text);
    json_decref(v);

    assert_true(mst_apikey_allows(rec, "workflows", "research"));
    assert_false(mst_apikey_allows(rec, "workflows", "other"));
    assert_true(mst_apikey_allows(rec, "models", "gpt-4o"));   /* null */

    assert_int_equal(mst_apikey_revoke(rec, T_NOW), MST_OK);
    v = mst_apikey_view(rec, T_NOW);
    assert_string_equal(json_string_value(json_object_get(v, "status")),
                        "revoked");
    json_decref(v);
    json_decref(rec);
}


static void
test_store_keys(void **state)
{
    int                  i;
    char                 next[MST_STORE_KEY_ID_MAX + 1];
    char                 ids[5][MST_APIKEY_ID_LEN + 1];
    json_t              *rec, *got, *list;
    t_env_t             *e;
    mst_txn_t           *txn;
    mst_apikey_secret_t  s;

    e = *state;

    txn = t_begin(e->store, 0);

    for (i = 0; i < 5; i++) {
        rec = t_key(i % 2 ? "{\"user_id\":\"odd\"}" : "{\"user_id\":\"even\"}",
                    &s);
        strcpy(ids[i], s.id);
        assert_int_equal(mst_store_key_put(txn, s.id, rec, 1), MST_OK);
        assert_int_equal(mst_store_key_put(txn, s.id, rec, 1), MST_EXISTS);
        json_decref(rec);
    }

    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);

    assert_int_equal(mst_store_key_get(txn, ids[3], &got), MST_OK);
    assert_string_equal(json_string_value(json_object_get(got, "id")),
                        ids[3]);
    json_decref(got);
    assert_int_equal(mst_store_key_get(txn, "key_0000000000000000", &got),
                     MST_NOTFOUND);
    assert_null(got);
    assert_int_equal(mst_store_key_get(txn, "", &got), MST_NOTFOUND);

    /* all, in pages of 2 */
    assert_int_equal(mst_store_key_list(txn, NULL, NULL, 2, &list, next),
                     MST_OK);
    assert_int_equal(json_array_size(list), 2);
    assert_string_not_equal(next, "");
    json_decref(list);
    assert_int_equal(mst_store_key_list(txn, NULL, next, 10, &list, next),
                     MST_OK);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(next, "");
    json_decref(list);

    /* one owner's */
    assert_int_equal(mst_store_key_list(txn, "odd", NULL, 10, &list, next),
                     MST_OK);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);

    /* a read transaction cannot write */
    rec = json_object();
    assert_int_equal(mst_store_key_put(txn, ids[0], rec, 0), MST_EINVAL);
    json_decref(rec);
    mst_txn_abort(txn);
}


/* a request's read: parsed once while the stored bytes stay the same */
static void
test_store_keys_shared(void **state)
{
    json_t               *rec, *a, *b, *c;
    t_env_t              *e;
    mst_txn_t            *txn;
    mst_apikey_secret_t   s;

    e = *state;

    rec = t_key("{\"user_id\":\"ann\"}", &s);
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_key_put(txn, s.id, rec, 1), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_key_get_shared(txn, s.id, &a), MST_OK);
    assert_int_equal(mst_store_key_get_shared(txn, s.id, &b), MST_OK);
    mst_txn_abort(txn);

    /* the same parse, a reference each */
    assert_ptr_equal(a, b);
    json_decref(b);

    /* revoked: the next read is the new record; the old one stays valid
       for whoever holds it */
    assert_int_equal(mst_apikey_revoke(rec, T_NOW), MST_OK);
    txn = t_begin(e->store, 0);
    assert_int_equal(mst_store_key_put(txn, s.id, rec, 0), MST_OK);
    assert_int_equal(mst_txn_commit(txn), MST_OK);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_key_get_shared(txn, s.id, &c), MST_OK);
    mst_txn_abort(txn);

    assert_ptr_not_equal(a, c);
    assert_true(json_is_integer(json_object_get(c, "revoked_at")));
    assert_true(json_is_null(json_object_get(a, "revoked_at")));

    json_decref(a);
    json_decref(c);
    json_decref(rec);

    txn = t_begin(e->store, 1);
    assert_int_equal(mst_store_key_get_shared(txn, "key_0000000000000000",
                                              &a), MST_NOTFOUND);
    mst_txn_abort(txn);

    mst_store_key_cache_clear();
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_secret_shape),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_create_strict),
        cmocka_unit_test(test_view_allows),
        cmocka_unit_test_setup_teardown(test_store_keys, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_keys_shared, t_setup,
                                        t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
