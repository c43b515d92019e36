/*
 * Copyright (C) Maestro authors
 */

/*
 * mst_cors: origins checked and made canonical (case, default ports),
 * what is not an origin refused with the reason, and a request's Origin
 * matched against the allow-list.
 */

#include "mst_test.h"
#include "mst_cors.h"


static int
tco_canon(const char *in, char *out, char *err)
{
    return mst_cors_origin(in, strlen(in), out, MST_CORS_ORIGIN_MAX, err,
                           MST_ERRLEN);
}


static void
test_canonical(void **state)
{
    char         out[MST_CORS_ORIGIN_MAX], err[MST_ERRLEN];
    size_t       i;
    const char  *ok[][2] = {
        { "https://app.example.com", "https://app.example.com" },
        { "HTTPS://App.Example.COM", "https://app.example.com" },
        { "https://app.example.com:443", "https://app.example.com" },
        { "http://localhost:80", "http://localhost" },
        { "http://localhost:5173", "http://localhost:5173" },
        { "https://a.example:80", "https://a.example:80" },
        { "http://127.0.0.1:8080", "http://127.0.0.1:8080" },
        { "http://[::1]:3000", "http://[::1]:3000" },
        { "http://[FE80::1]", "http://[fe80::1]" },
        { "capacitor://localhost", "capacitor://localhost" },
        { "chrome-extension://abcdef", "chrome-extension://abcdef" },
        { "https://xn--bcher-kva.example", "https://xn--bcher-kva.example" },
        { "http://a:65535", "http://a:65535" },
    };

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(tco_canon(ok[i][0], out, err), MST_OK);
        assert_string_equal(out, ok[i][1]);
    }
}


static void
test_refused(void **state)
{
    char         out[MST_CORS_ORIGIN_MAX], err[MST_ERRLEN], big[400];
    size_t       i;
    const char  *bad[][2] = {
        { "null", "\"null\" is the origin of any sandboxed page" },
        { "example.com", "scheme://host[:port]" },
        { "https://example.com/", "no path, not even \"/\"" },
        { "https://example.com/app", "no path" },
        { "https://example.com?x", "scheme://host[:port]" },
        { "https://user@example.com", "scheme://host[:port]" },
        { "https://", "no host name" },
        { "https://.example", "no host name" },
        { "https://example.", "no host name" },
        { "https://example.com:", "a port is 1..65535" },
        { "https://example.com:0", "a port is 1..65535" },
        { "https://example.com:080", "a port is 1..65535" },
        { "https://example.com:65536", "a port is 1..65535" },
        { "https://example.com:99999999999", "a port is 1..65535" },
        { "http://[::1", "a bad IPv6 address" },
        { "http://[x]", "a bad IPv6 address" },
        { "1http://a", "scheme://host[:port]" },
        { "://a", "scheme://host[:port]" },
        { "*", "scheme://host[:port]" },
        { "", "scheme://host[:port]" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(tco_canon(bad[i][0], out, err), MST_EINVAL);
        if (strstr(err, bad[i][1]) == NULL) {
            fail_msg("\"%s\": \"%s\", not \"%s\"", bad[i][0], err,
                     bad[i][1]);
        }
    }

    /* a NUL inside is not part of a host */
    assert_int_equal(mst_cors_origin("http://a\0b", 10, out, sizeof(out),
                                     err, sizeof(err)), MST_EINVAL);

    memset(big, 'a', sizeof(big));
    memcpy(big, "http://", 7);
    assert_int_equal(mst_cors_origin(big, sizeof(big), out, sizeof(out),
                                     err, sizeof(err)), MST_EINVAL);
    assert_non_null(strstr(err, "longer than 299 bytes"));
}


static void
test_allowed(void **state)
{
    const char  *list[] = { "https://app.example.com", "http://localhost:5173" };

#define TCO_ALLOWED(any, o)  mst_cors_allowed(list, 2, any, o, strlen(o))

    assert_true(TCO_ALLOWED(0, "https://app.example.com"));
    assert_true(TCO_ALLOWED(0, "https://APP.example.com:443"));
    assert_true(TCO_ALLOWED(0, "http://localhost:5173"));

    assert_false(TCO_ALLOWED(0, "http://app.example.com"));
    assert_false(TCO_ALLOWED(0, "https://app.example.com:8443"));
    assert_false(TCO_ALLOWED(0, "https://evil.app.example.com"));
    assert_false(TCO_ALLOWED(0, "https://app.example.com.evil"));
    assert_false(TCO_ALLOWED(0, "http://localhost"));
    assert_false(TCO_ALLOWED(0, "null"));
    assert_false(TCO_ALLOWED(0, ""));

    /* "*": any well-formed origin, never "null" or garbage */
    assert_true(TCO_ALLOWED(1, "https://anything.example"));
    assert_false(TCO_ALLOWED(1, "null"));
    assert_false(TCO_ALLOWED(1, "https://a.example/path"));

    assert_false(mst_cors_allowed(NULL, 0, 0, "https://a.example", 17));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_allowed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
