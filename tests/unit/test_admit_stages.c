/*
 * Copyright (C) Maestro authors
 */

/*
 * The identify stage: mst_caller (auth off: the local caller, the user
 * as the connection or the body names it; tenants and the admin with
 * auth on). The limits stage is test_limit.c.
 */

#include "mst_test.h"
#include "mst_caller.h"


static void
test_caller_local(void **state)
{
    mst_caller_t  c;

    memset(&c, 0xff, sizeof(c));
    mst_caller_local(&c);

    assert_int_equal(c.kind, MST_CALLER_LOCAL);
    assert_string_equal(mst_caller_kind_name(&c), "local");
    assert_null(mst_caller_user(&c));
    assert_int_equal(c.fixed, 0);
}


static void
test_caller_claim(void **state)
{
    char          err[MST_ERRLEN], big[MST_CALLER_USER_MAX + 2];
    mst_caller_t  c;

    mst_caller_local(&c);

    /* no user named: none */
    assert_int_equal(mst_caller_claim(&c, NULL, 0, err, sizeof(err)),
                     MST_OK);
    assert_null(mst_caller_user(&c));

    /* auth off: the body may name any user */
    assert_int_equal(mst_caller_claim(&c, "alice", 5, err, sizeof(err)),
                     MST_OK);
    assert_string_equal(mst_caller_user(&c), "alice");

    /* 1..128 bytes, no NUL */
    mst_caller_local(&c);
    assert_int_equal(mst_caller_claim(&c, "", 0, err, sizeof(err)),
                     MST_EINVAL);
    assert_string_equal(err, "a user id is 1..128 characters");
    assert_null(mst_caller_user(&c));

    memset(big, 'u', sizeof(big));
    assert_int_equal(mst_caller_claim(&c, big, MST_CALLER_USER_MAX, err,
                                      sizeof(err)), MST_OK);
    assert_int_equal(strlen(mst_caller_user(&c)), MST_CALLER_USER_MAX);

    mst_caller_local(&c);
    assert_int_equal(mst_caller_claim(&c, big, MST_CALLER_USER_MAX + 1, err,
                                      sizeof(err)), MST_EINVAL);
    assert_int_equal(mst_caller_claim(&c, "a\0b", 3, err, sizeof(err)),
                     MST_EINVAL);
    assert_null(mst_caller_user(&c));
}


/* a session's user (the URL) wins over what a message says */
static void
test_caller_session(void **state)
{
    char          err[MST_ERRLEN];
    mst_caller_t  c;

    mst_caller_local(&c);
    assert_int_equal(mst_caller_session(&c, "bob", 3, err, sizeof(err)),
                     MST_OK);
    assert_int_equal(c.fixed, 1);

    assert_int_equal(mst_caller_claim(&c, "mallory", 7, err, sizeof(err)),
                     MST_OK);
    assert_string_equal(mst_caller_user(&c), "bob");

    /* even a claim that would be invalid is not looked at */
    assert_int_equal(mst_caller_claim(&c, "", 0, err, sizeof(err)), MST_OK);
    assert_string_equal(mst_caller_user(&c), "bob");

    mst_caller_local(&c);
    assert_int_equal(mst_caller_session(&c, "", 0, err, sizeof(err)),
                     MST_EINVAL);
    assert_int_equal(c.fixed, 0);
}

static void
test_caller_tenant(void **state)
{
    char          err[MST_ERRLEN], big[MST_CALLER_USER_MAX + 1];
    mst_caller_t  c;

    assert_int_equal(mst_caller_tenant(&c, MST_CALLER_KEY, "alice", 5,
                                       "red", 3, "key_0123456789abcdef", err,
                                       sizeof(err)), MST_OK);
    assert_string_equal(mst_caller_kind_name(&c), "key");
    assert_string_equal(mst_caller_user(&c), "alice");
    assert_string_equal(c.team, "red");
    assert_string_equal(c.key_id, "key_0123456789abcdef");
    assert_false(mst_caller_is_admin(&c));

    /* the credential's user: the body cannot change it */
    assert_int_equal(mst_caller_claim(&c, "bob", 3, err, sizeof(err)),
                     MST_OK);
    assert_string_equal(mst_caller_user(&c), "alice");

    /* its own session only */
    assert_int_equal(mst_caller_session(&c, "alice", 5, err, sizeof(err)),
                     MST_OK);
    assert_int_equal(mst_caller_session(&c, "alicex", 6, err, sizeof(err)),
                     MST_EDENIED);
    assert_int_equal(mst_caller_session(&c, "bob", 3, err, sizeof(err)),
                     MST_EDENIED);
    assert_string_equal(mst_caller_user(&c), "alice");

    /* records: its own user's only; none without an owner */
    assert_true(mst_caller_may_see(&c, "alice"));
    assert_false(mst_caller_may_see(&c, "bob"));
    assert_false(mst_caller_may_see(&c, "alic"));
    assert_false(mst_caller_may_see(&c, NULL));

    /* a JWT without team or key id */
    assert_int_equal(mst_caller_tenant(&c, MST_CALLER_JWT, "u1", 2, NULL, 0,
                                       NULL, err, sizeof(err)), MST_OK);
    assert_string_equal(mst_caller_kind_name(&c), "jwt");
    assert_string_equal(c.team, "");
    assert_string_equal(c.key_id, "");

    /* bad user or team */
    assert_int_equal(mst_caller_tenant(&c, MST_CALLER_JWT, "", 0, NULL, 0,
                                       NULL, err, sizeof(err)), MST_EINVAL);
    memset(big, 't', sizeof(big));
    assert_int_equal(mst_caller_tenant(&c, MST_CALLER_JWT, "u", 1, big,
                                       sizeof(big), NULL, err, sizeof(err)),
                     MST_EINVAL);
    assert_string_equal(err, "a team is 1..128 characters");
    assert_int_equal(mst_caller_tenant(&c, MST_CALLER_KEY, "u", 1, NULL, 0,
                                       "key_0123456789abcdef0123456789abcd",
                                       err, sizeof(err)), MST_EINVAL);

    /* local and admin callers see everything */
    mst_caller_local(&c);
    assert_true(mst_caller_may_see(&c, "bob"));
    assert_true(mst_caller_may_see(&c, NULL));
    mst_caller_admin(&c);
    assert_true(mst_caller_is_admin(&c));
    assert_string_equal(mst_caller_kind_name(&c), "admin");
    assert_true(mst_caller_may_see(&c, "bob"));
    assert_int_equal(mst_caller_claim(&c, "bob", 3, err, sizeof(err)),
                     MST_OK);
    assert_string_equal(mst_caller_user(&c), "bob");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_caller_local),
        cmocka_unit_test(test_caller_claim),
        cmocka_unit_test(test_caller_session),
        cmocka_unit_test(test_caller_tenant),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
