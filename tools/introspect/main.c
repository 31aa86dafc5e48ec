/*
 * tools/introspect/main.c: acemq-introspect, the broker's RFC 7662 client on the command line. It
 * runs the same code the broker runs (ace/introspect.h) on its own libuv loop, so operators can check
 * an `ace_introspection` setup and the integration tests can drive the client against a real AS.
 *
 *   acemq-introspect --url URL --client-id ID --secret-file FILE [--cafile FILE] [--audience AUD]
 *                    [--issuer ISS] [--timeout-ms N] [--cache-ttl S] [--repeat N]
 *                    [--cancel-after-ms N] TOKEN|-
 *
 * Prints one JSON object per introspection (`-` reads the token from stdin) and exits 0 if the last
 * answer was an active token, 1 if inactive, 2 on any error, 3 if the request was cancelled.
 * --repeat asks again after each answer (the second answer comes from the cache when it is on).
 * The token and the secret are never printed.
 */
#include "ace/introspect.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ace/keys.h"

#define MAX_TOKEN 65536

typedef struct {
    ace_introspect_config_t cfg;
    const char *token_arg;
    int repeat;
    int cancel_after_ms;
} opts_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t cancel_timer;
    ace_introspect_t *ai;
    ace_introspect_req_t *req;
    const uint8_t *tok;
    size_t len;
    int left;
    int last;         /* exit status of the last answer */
    int cached;
    uint64_t started;
    int cancel_after_ms;
} run_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: acemq-introspect --url URL --client-id ID --secret-file FILE [--cafile FILE]\n"
            "         [--audience AUD] [--issuer ISS] [--timeout-ms N] [--cache-ttl S] [--repeat N]\n"
            "         [--cancel-after-ms N] TOKEN|-\n");
    exit(2);
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->cfg.cache_ttl = 60;
    o->repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (o->token_arg)
                usage();
            o->token_arg = a;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--url") == 0)
            o->cfg.url = v;
        else if (strcmp(a, "--client-id") == 0)
            o->cfg.client_id = v;
        else if (strcmp(a, "--secret-file") == 0)
            o->cfg.secret_file = v;
        else if (strcmp(a, "--cafile") == 0)
            o->cfg.cafile = v;
        else if (strcmp(a, "--audience") == 0)
            o->cfg.audience = v;
        else if (strcmp(a, "--issuer") == 0)
            o->cfg.issuer = v;
        else if (strcmp(a, "--timeout-ms") == 0)
            o->cfg.timeout_ms = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--cache-ttl") == 0)
            o->cfg.cache_ttl = atoi(v);
        else if (strcmp(a, "--repeat") == 0)
            o->repeat = atoi(v) > 0 ? atoi(v) : 1;
        else if (strcmp(a, "--cancel-after-ms") == 0)
            o->cancel_after_ms = atoi(v);
        else
            usage();
    }
    if (!o->cfg.url || !o->cfg.client_id || !o->cfg.secret_file || !o->token_arg)
        usage();
}

/* Text when it is valid UTF-8 (a JWT's jti), else hex. */
static json_t *bytes_json(const uint8_t *p, size_t n)
{
    json_t *s = json_stringn((const char *)p, n);
    if (s)
        return s;
    char *hex = malloc(2 * n + 1);
    if (!hex)
        return json_null();
    ace_hex_encode(p, n, hex);
    s = json_string(hex);
    free(hex);
    return s;
}

static json_t *claims_json(const ace_claims_t *c)
{
    static const char *kinds[] = {"none", "bstr", "text", "cbor", "json"};
    json_t *o = json_object();
    if (c->iss[0])
        json_object_set_new(o, "iss", json_string(c->iss));
    if (c->sub[0])
        json_object_set_new(o, "sub", json_string(c->sub));
    if (c->has_exp)
        json_object_set_new(o, "exp", json_integer(c->exp));
    if (c->has_iat)
        json_object_set_new(o, "iat", json_integer(c->iat));
    if (c->has_nbf)
        json_object_set_new(o, "nbf", json_integer(c->nbf));
    if (c->has_cti)
        json_object_set_new(o, "cti", bytes_json(c->cti, c->cti_len));
    if (c->scope_kind != ACE_SCOPE_NONE && c->scope_kind <= ACE_SCOPE_JSON_ARRAY) {
        json_object_set_new(o, "scope", bytes_json(c->scope, c->scope_len));
        json_object_set_new(o, "scope_kind", json_string(kinds[c->scope_kind]));
    }
    if (c->has_cnf) {
        json_t *cnf = json_object();
        if (c->cnf_key.kid_len)
            json_object_set_new(cnf, "kid", bytes_json(c->cnf_key.kid, c->cnf_key.kid_len));
        if (!c->cnf_is_kid_only)
            json_object_set_new(cnf, "key_type",
                                json_string(c->cnf_key.type == ACE_KEY_SYMMETRIC   ? "symmetric"
                                            : c->cnf_key.type == ACE_KEY_EC2_P256 ? "EC2 P-256"
                                                                                  : "OKP Ed25519"));
        json_object_set_new(o, "cnf", cnf);
    }
    return o;
}

static void print_result(run_t *r, int status, const ace_claims_t *claims)
{
    json_t *o = claims ? claims_json(claims) : json_object();
    const char *what = status == 0                           ? "active"
                       : status == ACE_INTROSPECT_E_INACTIVE ? "inactive"
                                                             : "error";
    json_object_set_new(o, "status", json_string(what));
    json_object_set_new(o, "code", json_integer(status));
    if (status)
        json_object_set_new(o, "error", json_string(ace_introspect_strerror(status)));
    json_object_set_new(o, "cached", json_boolean(r->cached));
    json_object_set_new(o, "ms", json_integer((json_int_t)(uv_now(&r->loop) - r->started)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (s)
        puts(s);
    fflush(stdout);
    free(s);
    json_decref(o);
    r->last = status == 0 ? 0 : status == ACE_INTROSPECT_E_INACTIVE ? 1 : 2;
}

static void start(run_t *r);

static void on_answer(void *arg, int status, const ace_claims_t *claims)
{
    run_t *r = arg;
    r->req = NULL;
    uv_update_time(&r->loop);
    print_result(r, status, claims);
    if (--r->left > 0)
        start(r);
    else if (r->cancel_after_ms > 0)
        uv_timer_stop(&r->cancel_timer);
}

static void start(run_t *r)
{
    ace_claims_t c;
    int rc = ace_introspect_cached(r->ai, r->tok, r->len, (int64_t)time(NULL), &c);
    r->cached = rc <= 0;
    ace_claims_free(&c);
    uv_update_time(&r->loop);
    r->started = uv_now(&r->loop);
    rc = ace_introspect_token(r->ai, &r->loop, r->tok, r->len, on_answer, r, &r->req);
    if (rc) {
        print_result(r, rc, NULL);
        r->left = 0;
    }
}

static void on_cancel_timer(uv_timer_t *t)
{
    run_t *r = t->data;
    if (!r->req)
        return;
    ace_introspect_cancel(r->req);
    r->req = NULL;
    r->left = 0;
    r->last = 3;
    puts("{\"status\":\"cancelled\"}");
    fflush(stdout);
}

static uint8_t *read_token(const char *arg, size_t *len)
{
    static uint8_t buf[MAX_TOKEN];
    if (strcmp(arg, "-") != 0) {
        *len = strlen(arg);
        return (uint8_t *)arg;
    }
    *len = fread(buf, 1, sizeof(buf), stdin);
    while (*len && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r'))
        (*len)--;
    return buf;
}

static void close_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    opts_t o;
    run_t r;
    char err[256] = "";
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN); /* an AS that hangs up early is an error to report, not a kill */
    memset(&r, 0, sizeof(r));
    r.tok = read_token(o.token_arg, &r.len);
    r.left = o.repeat;
    r.cancel_after_ms = o.cancel_after_ms;
    if (!(r.ai = ace_introspect_new(&o.cfg, err, sizeof(err)))) {
        fprintf(stderr, "acemq-introspect: %s\n", err);
        return 2;
    }
    uv_loop_init(&r.loop);
    uv_timer_init(&r.loop, &r.cancel_timer);
    r.cancel_timer.data = &r;
    if (o.cancel_after_ms > 0)
        uv_timer_start(&r.cancel_timer, on_cancel_timer, (uint64_t)o.cancel_after_ms, 0);
    else
        uv_unref((uv_handle_t *)&r.cancel_timer);
    start(&r);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    ace_introspect_free(r.ai);
    uv_walk(&r.loop, close_cb, NULL);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
    return r.last;
}
