/*
 * tests/unit/test_ace_introspect.c: the introspection client's pure parts (HTTP response reader,
 * JSON to claims, URL, request bytes) and, over loopback with a libuv server in the same loop, its
 * asynchronous path: answer, cache, timeout, cancel, AS down.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "ace/introspect.h"
#include "ace/introspect_int.h"
#include "tests/unit/test.h"

#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
#define ACTIVE_JSON                                                                                \
    "{\"active\":true,\"client_id\":\"dev-1\",\"scope\":\"a/+ b/#\",\"exp\":4102444800,"           \
    "\"iat\":1700000000,\"nbf\":1700000000.9,\"jti\":\"j-1\",\"aud\":[\"x\",\"broker\"]}"
#define EC_JWK                                                                                     \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","      \
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"

static char resp_buf[8192];

/* A 200 JSON response around body, with Content-Length. */
static const char *ok(const char *body)
{
    snprintf(resp_buf, sizeof(resp_buf), OK_HEAD "Content-Length: %zu\r\n\r\n%s", strlen(body),
             body);
    return resp_buf;
}

static int parse(const char *resp, const char *aud, ace_claims_t *c, int *status)
{
    return ace_introspect_parse_response((const uint8_t *)resp, strlen(resp), aud, c, status);
}

static int parse_json(const char *json, const char *aud)
{
    ace_claims_t c;
    int rc = ace_introspect_parse_json((const uint8_t *)json, strlen(json), aud, &c);
    ace_claims_free(&c);
    return rc;
}

TEST(active_answer)
{
    ace_claims_t c;
    int st;
    ASSERT_EQ(parse(ok(ACTIVE_JSON), "broker", &c, &st), 0);
    ASSERT_EQ(st, 200);
    ASSERT_STR_EQ(c.sub, "dev-1"); /* client_id stands in for a missing sub */
    ASSERT_EQ(c.iss[0], 0);        /* the async layer fills it in */
    ASSERT(c.has_exp && c.exp == 4102444800LL);
    ASSERT(c.has_iat && c.iat == 1700000000);
    ASSERT(c.has_nbf && c.nbf == 1700000000); /* a fractional NumericDate is floored */
    ASSERT(c.has_cti && c.cti_len == 3);
    ASSERT_MEM_EQ(c.cti, "j-1", 3);
    ASSERT_EQ(c.scope_kind, ACE_SCOPE_TSTR);
    ASSERT(c.scope_len == 7);
    ASSERT_MEM_EQ(c.scope, "a/+ b/#", 7);
    ASSERT_EQ(c.has_cnf, 0);
    ace_claims_free(&c);
}

TEST(inactive_and_missing_active)
{
    ace_claims_t c;
    int st;
    ASSERT_EQ(parse(ok("{\"active\":false}"), NULL, &c, &st), ACE_INTROSPECT_E_INACTIVE);
    ASSERT_EQ(st, 200);
    ASSERT_EQ(parse(ok("{\"active\":false,\"scope\":5}"), NULL, &c, &st), ACE_INTROSPECT_E_INACTIVE);
    ASSERT_EQ(parse(ok("{\"scope\":\"a\"}"), NULL, &c, &st), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse(ok("{\"active\":\"true\"}"), NULL, &c, &st), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse(ok("{\"active\":1}"), NULL, &c, &st), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse(ok("{\"active\":true}"), NULL, &c, &st), 0); /* only active is required */
    ASSERT_EQ(c.scope_kind, ACE_SCOPE_NONE);
    ace_claims_free(&c);
}

TEST(bad_json)
{
    ASSERT_EQ(parse_json("{\"active\":true,", NULL), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse_json("[true]", NULL), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse_json("", NULL), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse_json("{\"active\":true,\"active\":true}", NULL), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse_json("{\"active\":true} x", NULL), ACE_INTROSPECT_E_RESPONSE);
}

TEST(claim_types)
{
    ASSERT_EQ(parse_json("{\"active\":true,\"exp\":\"soon\"}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"exp\":1e300}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"sub\":7}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"scope\":{}}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"aud\":[1]}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"exi\":-1}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"jti\":\"0123456789012345678901234567890123456789"
                         "01234567890123456789012345\"}",
                         NULL),
              ACE_E_CLAIM); /* 66 bytes: longer than a cti can be kept */
    char big[400];
    snprintf(big, sizeof(big), "{\"active\":true,\"iss\":\"%0300d\"}", 0);
    ASSERT_EQ(parse_json(big, NULL), ACE_E_CLAIM);
}

TEST(audience)
{
    ASSERT_EQ(parse_json("{\"active\":true,\"aud\":\"broker\"}", "broker"), 0);
    ASSERT_EQ(parse_json("{\"active\":true,\"aud\":[\"a\",\"broker\"]}", "broker"), 0);
    ASSERT_EQ(parse_json("{\"active\":true,\"aud\":\"other\"}", "broker"), ACE_E_WRONG_AUDIENCE);
    ASSERT_EQ(parse_json("{\"active\":true,\"aud\":[]}", "broker"), ACE_E_WRONG_AUDIENCE);
    ASSERT_EQ(parse_json("{\"active\":true}", "broker"), 0);
    ASSERT_EQ(parse_json("{\"active\":true,\"aud\":\"other\"}", NULL), 0);
}

TEST(scope_forms_and_cnf)
{
    ace_claims_t c;
    const char *j = "{\"active\":true,\"sub\":\"s\",\"client_id\":\"c\",\"scope\":[[\"t/#\",[\"pub\"]]],"
                    "\"cnf\":{\"jwk\":" EC_JWK "}}";
    ASSERT_EQ(ace_introspect_parse_json((const uint8_t *)j, strlen(j), NULL, &c), 0);
    ASSERT_STR_EQ(c.sub, "s");
    ASSERT_EQ(c.scope_kind, ACE_SCOPE_JSON_ARRAY);
    ASSERT(c.scope_len == strlen("[[\"t/#\",[\"pub\"]]]"));
    ASSERT_MEM_EQ(c.scope, "[[\"t/#\",[\"pub\"]]]", c.scope_len);
    ASSERT(c.has_cnf && !c.cnf_is_kid_only && c.cnf_key.type == ACE_KEY_EC2_P256);
    ASSERT_EQ(c.cnf_key.k_len, 65);
    ace_claims_free(&c);
    j = "{\"active\":true,\"cnf\":{\"kid\":\"k1\"}}";
    ASSERT_EQ(ace_introspect_parse_json((const uint8_t *)j, strlen(j), NULL, &c), 0);
    ASSERT(c.has_cnf && c.cnf_is_kid_only && c.cnf_key.kid_len == 2);
    ace_claims_free(&c);
    /* Bound to a key the broker cannot check: refused, never downgraded to bearer. */
    ASSERT_EQ(parse_json("{\"active\":true,\"cnf\":{\"jkt\":\"abc\"}}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"cnf\":{\"x5t#S256\":\"abc\"}}", NULL), ACE_E_CLAIM);
    ASSERT_EQ(parse_json("{\"active\":true,\"cnf\":{\"jwk\":{\"kty\":\"EC\"}}}", NULL), ACE_E_CLAIM);
}

TEST(http_status_and_content_type)
{
    ace_claims_t c;
    int st;
    ASSERT_EQ(parse("HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}", NULL, &c, &st),
              ACE_INTROSPECT_E_HTTP);
    ASSERT_EQ(st, 401);
    ASSERT_EQ(parse("HTTP/1.1 200 OK\r\ncontent-type: Application/ACE+JSON\r\n"
                    "Content-Length: 15\r\n\r\n{\"active\":true}",
                    NULL, &c, &st),
              0);
    ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Type:application/json;charset=UTF-8\r\n"
                    "Content-Length: 15\r\n\r\n{\"active\":true}",
                    NULL, &c, &st),
              0);
    ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\n"
                    "{\"active\":true}",
                    NULL, &c, &st),
              ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"active\":true}", NULL, &c, &st),
              ACE_INTROSPECT_E_RESPONSE); /* no content type */
    ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Type: application/jsonx\r\nContent-Length: 15\r\n"
                    "\r\n{\"active\":true}",
                    NULL, &c, &st),
              ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Type: application/ace+cbor\r\n"
                    "Content-Length: 1\r\n\r\n\xa0",
                    NULL, &c, &st),
              ACE_INTROSPECT_E_RESPONSE); /* CBOR answers are not supported */
    ASSERT_EQ(parse("SSH-2.0-OpenSSH\r\n", NULL, &c, &st), ACE_INTROSPECT_E_RESPONSE);
    ASSERT_EQ(st, 0);
}

TEST(framing)
{
    ace_claims_t c;
    int st;
    ASSERT_EQ(parse(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"act\r\na;ext=1\r\nive\":true}"
                            "\r\n0\r\n\r\n",
                    NULL, &c, &st),
              0);
    ASSERT_EQ(parse("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"active\":true}", NULL,
                    &c, &st),
              0); /* body up to EOF */
    ASSERT_EQ(parse(OK_HEAD "Content-Length: 30\r\n\r\n{\"active\":true}", NULL, &c, &st),
              ACE_INTROSPECT_E_RESPONSE); /* truncated */
    ASSERT_EQ(parse("HTTP/1.1 100 Continue\r\n\r\n" OK_HEAD "Content-Length: 15\r\n\r\n"
                    "{\"active\":true}",
                    NULL, &c, &st),
              0);
    ASSERT_EQ(st, 200);
    ASSERT_EQ(parse(OK_HEAD "Content-Length: 15\r\n\r\n{\"active\":true}GARBAGE AFTER", NULL, &c, &st),
              0); /* bytes after the answer are not read */
    ASSERT_EQ(parse(OK_HEAD "Content-Length: 99999999\r\n\r\n{}", NULL, &c, &st), ACE_E_TOO_LARGE);
    ASSERT_EQ(parse(OK_HEAD "Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}", NULL, &c, &st),
              ACE_INTROSPECT_E_RESPONSE);
}

/* The same answer fed in every split, and byte by byte: header names, values, chunk sizes and the
 * body straddle calls. */
TEST(split_feeds)
{
    const char *resp = "HTTP/1.1 200 OK\r\nX-Long-Header-Name-Here: v\r\nCoNtEnT-TyPe: appli"
                       "cation/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "8\r\n{\"active\r\n7\r\n\":true}\r\n0\r\n\r\n";
    size_t n = strlen(resp);
    for (size_t cut = 1; cut < n; cut++) {
        ace_http_resp_t r;
        ace_claims_t c;
        ace_http_resp_init(&r, 0);
        int rc = ace_http_resp_feed(&r, (const uint8_t *)resp, cut);
        ASSERT_EQ(rc, 0);
        rc = ace_http_resp_feed(&r, (const uint8_t *)resp + cut, n - cut);
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(ace_http_resp_result(&r, NULL, &c), 0);
        ace_http_resp_free(&r);
        ace_claims_free(&c);
    }
    ace_http_resp_t r;
    ace_claims_t c;
    int rc = 0;
    ace_http_resp_init(&r, 0);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ace_http_resp_feed(&r, (const uint8_t *)resp + i, 1);
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(ace_http_resp_result(&r, NULL, &c), 0);
    ace_http_resp_free(&r);
}

TEST(body_bound)
{
    ace_http_resp_t r;
    const char *resp = OK_HEAD "Transfer-Encoding: chunked\r\n\r\n40\r\n";
    char chunk[64];
    memset(chunk, ' ', sizeof(chunk));
    ace_http_resp_init(&r, 100);
    ASSERT_EQ(ace_http_resp_feed(&r, (const uint8_t *)resp, strlen(resp)), 0);
    ASSERT_EQ(ace_http_resp_feed(&r, (const uint8_t *)chunk, 64), 0);
    ASSERT_EQ(ace_http_resp_feed(&r, (const uint8_t *)"\r\n40\r\n", 6), 0);
    ASSERT_EQ(ace_http_resp_feed(&r, (const uint8_t *)chunk, 64), ACE_E_TOO_LARGE);
    ace_http_resp_free(&r);
}

TEST(url)
{
    ace_url_t u;
    ASSERT_EQ(ace_url_parse("https://as.example/oauth/introspect?x=1", &u), 0);
    ASSERT(u.tls);
    ASSERT_STR_EQ(u.host, "as.example");
    ASSERT_STR_EQ(u.port, "443");
    ASSERT_STR_EQ(u.authority, "as.example");
    ASSERT_STR_EQ(u.path, "/oauth/introspect?x=1");
    ASSERT_EQ(ace_url_parse("http://[::1]:8080", &u), 0);
    ASSERT_STR_EQ(u.host, "::1");
    ASSERT_STR_EQ(u.port, "8080");
    ASSERT_STR_EQ(u.authority, "[::1]:8080");
    ASSERT_STR_EQ(u.path, "/");
    ASSERT_EQ(ace_url_parse("HTTP://h:80/p", &u), 0);
    ASSERT(!u.tls);
    ASSERT_STR_EQ(u.authority, "h:80");
    ASSERT_EQ(ace_url_parse("ftp://h/", &u), -1);
    ASSERT_EQ(ace_url_parse("https://user:pw@h/", &u), -1);
    ASSERT_EQ(ace_url_parse("https://h/p#frag", &u), -1);
    ASSERT_EQ(ace_url_parse("https://h:0/", &u), -1);
    ASSERT_EQ(ace_url_parse("https://h:65536/", &u), -1);
    ASSERT_EQ(ace_url_parse("https://h:8x/", &u), -1);
    ASSERT_EQ(ace_url_parse("https:///p", &u), -1);
    ASSERT_EQ(ace_url_parse("https://h/a b", &u), -1);
    ASSERT_EQ(ace_url_parse("https://[::1/", &u), -1);
}

TEST(request_bytes)
{
    ace_url_t u;
    char *basic, *req;
    size_t len;
    ASSERT_EQ(ace_introspect_basic("my id", "se:cr%t", &basic), 0);
    ASSERT_STR_EQ(basic, "bXklMjBpZDpzZSUzQWNyJTI1dA=="); /* base64("my%20id:se%3Acr%25t") */
    ASSERT_EQ(ace_url_parse("https://as.example:8443/i", &u), 0);
    ASSERT_EQ(ace_introspect_build_request(&u, basic, (const uint8_t *)"a.b-c_d~e+f/g=", 14, &req,
                                           &len),
              0);
    const char *body = "token=a.b-c_d~e%2Bf%2Fg%3D&token_type_hint=access_token";
    ASSERT(len == strlen(req));
    ASSERT(strncmp(req, "POST /i HTTP/1.1\r\nHost: as.example:8443\r\n", 41) == 0);
    ASSERT(strstr(req, "\r\nAuthorization: Basic bXklMjBpZDpzZSUzQWNyJTI1dA==\r\n"));
    ASSERT(strstr(req, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
    ASSERT(strstr(req, "\r\nContent-Length: 55\r\n"));
    ASSERT_STR_EQ(req + len - strlen(body), body);
    free(req);
    free(basic);
}

/* ---- the asynchronous path, against a fake AS on the same loop ---- */

typedef struct {
    uv_tcp_t srv;
    int silent; /* accept and read, never answer */
    int conns;
    int port;
    const char *answer;
} fake_as_t;

typedef struct {
    uv_tcp_t t;
    uv_write_t w;
    int replied;
    char buf[4096];
    fake_as_t *as;
} fake_conn_t;

typedef struct {
    int calls, status;
    ace_claims_t claims;
} result_t;

static void fc_closed(uv_handle_t *h)
{
    free(h);
}

static void fc_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, fc_closed);
}

static void fc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    *b = uv_buf_init(((fake_conn_t *)h)->buf, sizeof(((fake_conn_t *)h)->buf));
}

static void fc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fake_conn_t *fc = (fake_conn_t *)s;
    (void)b;
    if (n < 0) {
        if (!fc->replied && !uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, fc_closed);
        return;
    }
    if (n > 0 && !fc->as->silent && !fc->replied) {
        fc->replied = 1;
        uv_buf_t out = uv_buf_init((char *)fc->as->answer, (unsigned)strlen(fc->as->answer));
        uv_read_stop(s);
        uv_write(&fc->w, s, &out, 1, fc_written);
    }
}

static void fa_conn(uv_stream_t *srv, int status)
{
    fake_as_t *as = srv->data;
    fake_conn_t *fc = calloc(1, sizeof(*fc));
    if (status < 0 || !fc)
        return;
    fc->as = as;
    uv_tcp_init(srv->loop, &fc->t);
    if (uv_accept(srv, (uv_stream_t *)&fc->t) == 0) {
        as->conns++;
        uv_read_start((uv_stream_t *)&fc->t, fc_alloc, fc_read);
    } else {
        uv_close((uv_handle_t *)&fc->t, fc_closed);
    }
}

static int fa_start(uv_loop_t *loop, fake_as_t *as)
{
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_ip4_addr("127.0.0.1", 0, &a);
    as->srv.data = as;
    if (uv_tcp_init(loop, &as->srv) || uv_tcp_bind(&as->srv, (struct sockaddr *)&a, 0) ||
        uv_listen((uv_stream_t *)&as->srv, 8, fa_conn) ||
        uv_tcp_getsockname(&as->srv, (struct sockaddr *)&ss, &len))
        return -1;
    as->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_TCP && h->data == NULL ? fc_closed : NULL);
}

/* Closes what is left (the fake AS and its connections) and checks nothing leaked on the loop. */
static int loop_done(uv_loop_t *loop)
{
    uv_walk(loop, close_any, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop);
}

static void on_result(void *arg, int status, const ace_claims_t *claims)
{
    result_t *r = arg;
    r->calls++;
    r->status = status;
    if (claims)
        ace_claims_copy(&r->claims, claims);
}

static char secret_path[64];

static ace_introspect_t *new_client(int port, unsigned timeout_ms, int ttl, char *url, size_t cap)
{
    ace_introspect_config_t cfg;
    char err[256];
    snprintf(secret_path, sizeof(secret_path), "/tmp/acemq-introspect-secret-%d", (int)getpid());
    FILE *f = fopen(secret_path, "w");
    if (!f)
        return NULL;
    fputs("secret\n", f);
    fclose(f);
    snprintf(url, cap, "http://127.0.0.1:%d/introspect", port);
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = url;
    cfg.client_id = "broker";
    cfg.secret_file = secret_path;
    cfg.timeout_ms = timeout_ms;
    cfg.cache_ttl = ttl;
    ace_introspect_t *ai = ace_introspect_new(&cfg, err, sizeof(err));
    unlink(secret_path);
    return ai;
}

static const uint8_t TOK[] = "reference-token-1";

TEST(async_answer_and_cache)
{
    uv_loop_t loop;
    fake_as_t as = {.answer = ok(ACTIVE_JSON)};
    result_t res = {0};
    ace_introspect_req_t *req;
    char url[128];
    uv_loop_init(&loop);
    ASSERT_EQ(fa_start(&loop, &as), 0);
    ace_introspect_t *ai = new_client(as.port, 2000, 60, url, sizeof(url));
    ASSERT(ai);
    ASSERT_EQ(ace_introspect_token(ai, &loop, TOK, sizeof(TOK) - 1, on_result, &res, &req), 0);
    while (res.calls == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(res.calls, 1);
    ASSERT_EQ(res.status, 0);
    ASSERT_STR_EQ(res.claims.sub, "dev-1");
    ASSERT_STR_EQ(res.claims.iss, url);
    ASSERT_EQ(as.conns, 1);
    ace_claims_free(&res.claims);
    /* The second time the cache answers, still through the loop and not from inside the call. */
    ASSERT_EQ(ace_introspect_token(ai, &loop, TOK, sizeof(TOK) - 1, on_result, &res, &req), 0);
    ASSERT_EQ(res.calls, 1);
    while (res.calls == 1 && uv_run(&loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(res.calls, 2);
    ASSERT_EQ(res.status, 0);
    ASSERT_STR_EQ(res.claims.sub, "dev-1");
    ASSERT_EQ(as.conns, 1);
    ace_claims_free(&res.claims);
    ace_claims_t c;
    ASSERT_EQ(ace_introspect_cached(ai, TOK, sizeof(TOK) - 1, (int64_t)time(NULL), &c), 0);
    ace_claims_free(&c);
    ace_introspect_free(ai);
    ASSERT_EQ(loop_done(&loop), 0);
}

TEST(async_timeout)
{
    uv_loop_t loop;
    fake_as_t as = {.silent = 1};
    result_t res = {0};
    ace_introspect_req_t *req;
    char url[128];
    uv_loop_init(&loop);
    ASSERT_EQ(fa_start(&loop, &as), 0);
    ace_introspect_t *ai = new_client(as.port, 100, 60, url, sizeof(url));
    ASSERT(ai);
    uint64_t t0 = uv_hrtime();
    ASSERT_EQ(ace_introspect_token(ai, &loop, TOK, sizeof(TOK) - 1, on_result, &res, &req), 0);
    while (res.calls == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(res.calls, 1);
    ASSERT_EQ(res.status, ACE_INTROSPECT_E_TIMEOUT);
    ASSERT((uv_hrtime() - t0) / 1000000 >= 90);
    /* Errors are not cached. */
    ASSERT_EQ(ace_introspect_cached(ai, TOK, sizeof(TOK) - 1, (int64_t)time(NULL), &res.claims), 1);
    ace_introspect_free(ai);
    ASSERT_EQ(loop_done(&loop), 0);
}

TEST(async_cancel)
{
    uv_loop_t loop;
    fake_as_t as = {.silent = 1};
    result_t res = {0};
    ace_introspect_req_t *req;
    char url[128];
    uv_loop_init(&loop);
    ASSERT_EQ(fa_start(&loop, &as), 0);
    ace_introspect_t *ai = new_client(as.port, 5000, 60, url, sizeof(url));
    ASSERT(ai);
    /* Cancelled once connected... */
    ASSERT_EQ(ace_introspect_token(ai, &loop, TOK, sizeof(TOK) - 1, on_result, &res, &req), 0);
    while (as.conns == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    ace_introspect_cancel(req);
    /* ...and at once, while the name lookup may still run, with the client dropped right after:
     * the request keeps what it needs alive. */
    ASSERT_EQ(ace_introspect_token(ai, &loop, TOK, sizeof(TOK) - 1, on_result, &res, &req), 0);
    ace_introspect_cancel(req);
    ace_introspect_free(ai);
    uv_close((uv_handle_t *)&as.srv, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(res.calls, 0);
    ASSERT_EQ(loop_done(&loop), 0);
}

TEST(async_as_down)
{
    uv_loop_t loop;
    fake_as_t as = {0};
    result_t res = {0};
    ace_introspect_req_t *req;
    char url[128];
    uv_loop_init(&loop);
    ASSERT_EQ(fa_start(&loop, &as), 0);
    uv_close((uv_handle_t *)&as.srv, NULL); /* its port is now closed */
    uv_run(&loop, UV_RUN_DEFAULT);
    ace_introspect_t *ai = new_client(as.port, 2000, 60, url, sizeof(url));
    ASSERT(ai);
    ASSERT_EQ(ace_introspect_token(ai, &loop, TOK, sizeof(TOK) - 1, on_result, &res, &req), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(res.calls, 1);
    ASSERT_EQ(res.status, ACE_INTROSPECT_E_CONNECT);
    ASSERT_EQ(ace_introspect_token(ai, &loop, TOK, 0, on_result, &res, &req), ACE_E_ARG);
    ace_introspect_free(ai);
    ASSERT_EQ(loop_done(&loop), 0);
}

TEST(config_errors)
{
    ace_introspect_config_t cfg;
    char err[256] = "";
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = "https://as.example/introspect";
    cfg.client_id = "broker";
    cfg.secret_file = "/nonexistent/secret";
    ASSERT(!ace_introspect_new(&cfg, err, sizeof(err)));
    ASSERT(strstr(err, "/nonexistent/secret"));
    cfg.secret_file = "/proc/self/cmdline"; /* any readable, non-empty first line */
    cfg.cafile = "/nonexistent/ca.pem";
    ASSERT(!ace_introspect_new(&cfg, err, sizeof(err)));
    ASSERT(strstr(err, "CA file"));
    cfg.url = "https://127.0.0.1/introspect";
    ASSERT(!ace_introspect_new(&cfg, err, sizeof(err)));
    ASSERT(strstr(err, "DNS name"));
    cfg.url = "mqtt://as/";
    ASSERT(!ace_introspect_new(&cfg, err, sizeof(err)));
    ASSERT(!ace_introspect_new(NULL, err, sizeof(err)));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(active_answer);
    RUN(inactive_and_missing_active);
    RUN(bad_json);
    RUN(claim_types);
    RUN(audience);
    RUN(scope_forms_and_cnf);
    RUN(http_status_and_content_type);
    RUN(framing);
    RUN(split_feeds);
    RUN(body_bound);
    RUN(url);
    RUN(request_bytes);
    RUN(async_answer_and_cache);
    RUN(async_timeout);
    RUN(async_cancel);
    RUN(async_as_down);
    RUN(config_errors);
    return test_summary();
}
