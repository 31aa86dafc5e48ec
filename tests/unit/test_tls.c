/*
 * tests/unit/test_tls.c: the TLS layer against real clients over loopback.
 *
 * A libuv loop on its own thread runs echo servers built from tls_stream_new() over the
 * project's TCP stream; the test thread drives `openssl s_client`, Python's ssl module and
 * pyOpenSSL (/usr/bin/python3) against them and compares what the clients see (exporter
 * values, reuse, refusals) with what the server recorded. Certificates, keys and a CRL are made
 * with the openssl CLI in a temporary directory at start-up and deleted at the end.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/test.h"
#include "tls/tls.h"

#define LABEL "EXPORTER-ACE-MQTT-Sign-Challenge"

static char dir[64];
static uv_loop_t loop;
static uv_async_t stop_async;
static pthread_t loop_thread, loop_tid; /* loop_tid: set by the loop thread itself */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* What the loop thread saw, read by the test thread under mu. */
static struct {
    int opened, closed, live;
    uint8_t exp_none[32], exp_empty[32];
    tls_info_t info;
    char cipher[96], cert_id[128], psk_id[64];
    char logs[1 << 16];
    size_t log_len;
    /* psk_hook runs inside mbedtls_ssl_handshake(): where it ran shows where handshakes run */
    int hook_calls, hook_on_loop, open_off_loop;
} seen;

enum { SRV_ECDSA, SRV_CLIENTCERT, SRV_PSK, SRV_SHORT, SRV_RELOAD, N_SRV };
static struct {
    tls_server_t *srv;
    stream_acceptor_t listener;
    int port;
} lst[N_SRV];

/* ---- helpers on the test thread ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* Runs a shell command and returns its stdout+stderr (static buffer). */
static const char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *run(const char *fmt, ...)
{
    static char out[1 << 16];
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f)
        pclose(f);
    return out;
}

static int opened(void)
{
    pthread_mutex_lock(&mu);
    int n = seen.opened;
    pthread_mutex_unlock(&mu);
    return n;
}

static int log_count(const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&mu);
    for (const char *p = seen.logs; (p = strstr(p, needle)) != NULL; p++)
        n++;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Polls until f() > than, up to 5 s (the loop thread may lag the client by a moment). */
static int wait_above(int (*f)(void), int than)
{
    for (int i = 0; i < 500; i++) {
        if (f() > than)
            return 1;
        usleep(10000);
    }
    return 0;
}

static int wait_log(const char *needle, int than)
{
    for (int i = 0; i < 500; i++) {
        if (log_count(needle) > than)
            return 1;
        usleep(10000);
    }
    return 0;
}

static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static const char *s_client(int port, const char *extra)
{
    return run("(echo hello; sleep 0.3) | timeout 10 openssl s_client -connect 127.0.0.1:%d "
               "-CAfile %s/ca.pem %s", port, dir, extra);
}

/* ---- the echo server on the loop thread ---- */

static void ev_data(stream_t *s, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    s->ops->write(s, &b, 1, NULL, NULL);
}

static void ev_open(stream_t *s)
{
    tls_info_t info;
    pthread_mutex_lock(&mu);
    tls_exporter(s, LABEL, NULL, 0, 0, seen.exp_none, 32);
    tls_exporter(s, LABEL, (const uint8_t *)"", 0, 1, seen.exp_empty, 32);
    tls_session_info(s, &info);
    seen.info = info;
    snprintf(seen.cipher, sizeof seen.cipher, "%s", info.ciphersuite);
    snprintf(seen.cert_id, sizeof seen.cert_id, "%s", info.cert_identity ? info.cert_identity : "");
    snprintf(seen.psk_id, sizeof seen.psk_id, "%.*s", (int)info.psk_identity_len,
             info.psk_identity ? (const char *)info.psk_identity : "");
    seen.opened++;
    seen.live++;
    seen.open_off_loop += !pthread_equal(pthread_self(), loop_tid);
    pthread_mutex_unlock(&mu);
}

static void ev_closed(stream_t *s, int status, const char *why)
{
    (void)s, (void)status, (void)why;
    pthread_mutex_lock(&mu);
    seen.closed++;
    seen.live--;
    pthread_mutex_unlock(&mu);
}

static const stream_events_t echo_ev = {ev_data, ev_open, ev_closed};

static void on_conn(stream_acceptor_t *a, int fd, const struct sockaddr *peer, size_t peer_len)
{
    int i = (int)(intptr_t)a->arg;
    if (fd < 0)
        return;
    stream_t *s = tls_stream_new(lst[i].srv, &loop, fd, peer, peer_len, &echo_ev, NULL);
    if (s)
        s->ops->start(s);
}

static void capture_log(void *arg, int level, const char *event, const char *msg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    int n = snprintf(seen.logs + seen.log_len, sizeof seen.logs - seen.log_len,
                     "level=%d event=%s %s\n", level, event, msg);
    if (n > 0 && seen.log_len + (size_t)n < sizeof seen.logs)
        seen.log_len += (size_t)n;
    else
        seen.log_len = 0; /* wrap: tests only look for lines they have just caused */
    pthread_mutex_unlock(&mu);
    if (getenv("TLS_TEST_VERBOSE"))
        fprintf(stderr, "event=%s %s\n", event, msg);
}

static int psk_hook(void *arg, const uint8_t *id, size_t len, uint8_t *key, size_t *key_len)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    seen.hook_calls++;
    seen.hook_on_loop += pthread_equal(pthread_self(), loop_tid) != 0;
    pthread_mutex_unlock(&mu);
    if (len != 11 || memcmp(id, "ace-token-7", 11) != 0 || *key_len < 16)
        return -1;
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(0xa0 + i);
    *key_len = 16;
    return 0;
}

static void stop_cb(uv_async_t *a)
{
    for (int i = 0; i < N_SRV; i++)
        stream_acceptor_close(&lst[i].listener);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    loop_tid = pthread_self();
    pthread_mutex_unlock(&mu);
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static void path(char *buf, const char *name)
{
    snprintf(buf, 200, "%s/%s", dir, name);
}

static int start_server(int i, tls_server_config_t *cfg)
{
    char err[256];
    struct sockaddr_in a;
    if (tls_server_new(&lst[i].srv, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "server %d: %s\n", i, err);
        return -1;
    }
    tls_server_set_log(lst[i].srv, capture_log, NULL);
    uv_ip4_addr("127.0.0.1", 0, &a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (const struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    lst[i].port = ntohs(a.sin_port);
    return stream_acceptor_start(&lst[i].listener, &loop, fd, on_conn, (void *)(intptr_t)i);
}


/* ---- set-up: certificates, the client helper, the servers ---- */

static const char gen_script[] =
    "set -e\n"
    "cat > ca.cnf <<'EOF'\n"
    "[ ca ]\ndefault_ca = myca\n[ myca ]\ndir = .\ndatabase = index.txt\nnew_certs_dir = .\n"
    "serial = serial\ncrlnumber = crlnumber\ndefault_md = sha256\npolicy = pol\n"
    "default_days = 30\ndefault_crl_days = 30\nunique_subject = no\ncopy_extensions = copy\n"
    "[ pol ]\ncommonName = optional\norganizationName = optional\n"
    "[ req ]\ndistinguished_name = dn\n[ dn ]\n"
    "[ v3_ca ]\nbasicConstraints = critical,CA:true\nkeyUsage = keyCertSign,cRLSign\n"
    "EOF\n"
    ": > index.txt; echo 1000 > serial; echo 1000 > crlnumber\n"
    "EC='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -config ca.cnf'\n"
    "openssl req -x509 $EC -keyout ca.key -out ca.pem -subj /CN=acemq-test-ca -days 30 "
    "-extensions v3_ca\n"
    "openssl req -x509 $EC -keyout other.key -out other.pem -subj /CN=other-ca -days 30 "
    "-extensions v3_ca\n"
    "sign() { n=$1; shift; openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key "
    "-in $n.csr -out $n.pem \"$@\"; }\n"
    "for n in srv client1 revoked expired; do\n"
    "  cn=$n; [ $n = srv ] && cn=localhost\n"
    "  openssl req $EC -keyout $n.key -out $n.csr -subj /CN=$cn\n"
    "done\n"
    "openssl req $EC -keyout sanonly.key -out sanonly.csr -subj /O=acme "
    "-addext subjectAltName=DNS:device7.example\n"
    "openssl req -newkey rsa:2048 -nodes -config ca.cnf -keyout rsa.key -out rsa.csr "
    "-subj /CN=localhost\n"
    "sign srv; sign client1; sign revoked; sign sanonly; sign rsa\n"
    "sign expired -startdate 20200101000000Z -enddate 20200102000000Z\n"
    "openssl ca -config ca.cnf -cert ca.pem -keyfile ca.key -revoke revoked.pem\n"
    "openssl ca -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out crl.pem\n"
    "openssl req $EC -keyout stranger.key -out stranger.csr -subj /CN=stranger\n"
    "openssl x509 -req -in stranger.csr -CA other.pem -CAkey other.key -CAcreateserial "
    "-out stranger.pem -days 30\n"
    "cat srv.pem ca.pem > srvchain.pem\n"
    "printf '# test keys\\ndev1:00112233445566778899aabbccddeeff\\n' > psk.txt\n"
    "echo 'not a certificate' > broken.pem\n";

/* Clients Python can do and the openssl CLI cannot: pyOpenSSL's exporter with a zero-length
 * context, EMS off, many concurrent connections, a connection held across a reload, a silent
 * TCP peer, a peer that stops after its ClientHello. */
static const char cli_py[] =
    "import socket, ssl, sys, time\n"
    "mode, port = sys.argv[1], int(sys.argv[2])\n"
    "def tls(ca):\n"
    "    c = ssl.create_default_context(cafile=ca); c.check_hostname = False\n"
    "    c.maximum_version = ssl.TLSVersion.TLSv1_2\n"
    "    return c.wrap_socket(socket.create_connection(('127.0.0.1', port)))\n"
    "def echo(s, msg):\n"
    "    s.sendall(msg); got = b''\n"
    "    while len(got) < len(msg): got += s.recv(65536)\n"
    "    assert got == msg, got\n"
    "if mode == 'export':\n"
    "    from OpenSSL import SSL\n"
    "    ctx = SSL.Context(SSL.TLS_METHOD); ctx.load_verify_locations(sys.argv[3])\n"
    "    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)\n"
    "    if sys.argv[4] == '1': ctx.set_options(0x1)  # SSL_OP_NO_EXTENDED_MASTER_SECRET\n"
    "    c = SSL.Connection(ctx, socket.create_connection(('127.0.0.1', port)))\n"
    "    c.set_connect_state(); c.do_handshake(); c.sendall(b'x'); c.recv(1)\n"
    "    L = b'EXPORTER-ACE-MQTT-Sign-Challenge'\n"
    "    print('none=' + c.export_keying_material(L, 32).hex())\n"
    "    print('empty=' + c.export_keying_material(L, 32, b'').hex())\n"
    "elif mode == 'many':\n"
    "    n, hold = int(sys.argv[4]), float(sys.argv[5])\n"
    "    socks = [tls(sys.argv[3]) for i in range(n)]\n"
    "    for i, s in enumerate(socks): echo(s, b'ping %d ' % i * 100)\n"
    "    print('ready', flush=True); time.sleep(hold)\n"
    "    for i, s in enumerate(socks): echo(s, b'again %d ' % i * 3000)\n"
    "    print('ok2', flush=True)\n"
    "elif mode == 'storm':\n"
    "    import threading\n"
    "    n = int(sys.argv[4]); s = tls(sys.argv[3]); echo(s, b'warm'); worst = 0.0\n"
    "    ts = [threading.Thread(target=lambda: tls(sys.argv[3]).close()) for i in range(n)]\n"
    "    for t in ts: t.start()\n"
    "    echoes = 0\n"
    "    while any(t.is_alive() for t in ts):\n"
    "        t0 = time.time(); echo(s, b'x' * 64); worst = max(worst, time.time() - t0)\n"
    "        echoes += 1\n"
    "    print('echoes=%d worst_rtt_ms=%.1f' % (echoes, worst * 1000))\n"
    "elif mode == 'silent':\n"
    "    s = socket.create_connection(('127.0.0.1', port)); t = time.time()\n"
    "    s.settimeout(10); d = s.recv(100)\n"
    "    print('closed after %.1f' % (time.time() - t))\n"
    "elif mode == 'hello':\n"
    "    c = ssl.create_default_context(); inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()\n"
    "    o = c.wrap_bio(inc, out)\n"
    "    try: o.do_handshake()\n"
    "    except ssl.SSLWantReadError: pass\n"
    "    s = socket.create_connection(('127.0.0.1', port)); s.sendall(out.read())\n"
    "    print('sent', flush=True); time.sleep(float(sys.argv[3]))\n";

static int setup(void)
{
    char f[9][200];
    const char *names[] = {"srvchain.pem", "srv.key", "ca.pem", "rsa.pem", "rsa.key",
                           "crl.pem", "psk.txt", "cli.py", "gen.sh"};
    snprintf(dir, sizeof dir, "/tmp/acemq-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    for (int i = 0; i < 9; i++)
        path(f[i], names[i]);
    FILE *o = fopen(f[7], "w");
    fputs(cli_py, o);
    fclose(o);
    o = fopen(f[8], "w");
    fputs(gen_script, o);
    fclose(o);
    if (sh("cd %s && sh gen.sh >gen.log 2>&1", dir) != 0) {
        fprintf(stderr, "certificate generation failed, see %s/gen.log\n", dir);
        return -1;
    }
    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, stop_cb);
    tls_server_config_t a = {.certfile = f[0], .keyfile = f[1], .tls_version = "tlsv1.2"};
    tls_server_config_t b = {.certfile = f[3], .keyfile = f[4], .cafile = f[2], .crlfile = f[5],
                             .require_certificate = 1, .use_identity_as_username = 1};
    tls_server_config_t c = {.psk_hint = "acemq", .psk_file = f[6], .psk_lookup = psk_hook};
    tls_server_config_t d = {.certfile = f[0], .keyfile = f[1], .tls_handshake_timeout = 1,
                             .max_handshakes = 1};
    tls_server_config_t e = a;
    if (start_server(SRV_ECDSA, &a) || start_server(SRV_CLIENTCERT, &b) ||
        start_server(SRV_PSK, &c) || start_server(SRV_SHORT, &d) || start_server(SRV_RELOAD, &e))
        return -1;
    return pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static void teardown(void)
{
    uv_async_send(&stop_async);
    pthread_join(loop_thread, NULL);
    uv_loop_close(&loop);
    for (int i = 0; i < N_SRV; i++)
        tls_server_free(lst[i].srv);
    if (!getenv("TLS_TEST_KEEP"))
        sh("rm -rf %s", dir);
}

/* ---- tests ---- */

TEST(exporter_matches_openssl_no_context)
{
    int n0 = opened();
    const char *out = s_client(lst[SRV_ECDSA].port, "-tls1_2 -keymatexport " LABEL
                                                   " -keymatexportlen 32");
    const char *km = strstr(out, "Keying material: ");
    uint8_t want[32];
    ASSERT(km);
    ASSERT(hex_decode(km + 17, want, 32) == 0);
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    int same = memcmp(want, seen.exp_none, 32) == 0, ems = seen.info.ems,
        resumed = seen.info.resumed;
    pthread_mutex_unlock(&mu);
    ASSERT(same);
    ASSERT_EQ(ems, 1);
    ASSERT_EQ(resumed, 0);
    ASSERT(strstr(seen.cipher, "ECDHE-ECDSA"));
    ASSERT(strstr(out, "Extended master secret: yes"));
}

TEST(exporter_zero_length_context_and_no_ems)
{
    int n0 = opened();
    const char *out = run("/usr/bin/python3 %s/cli.py export %d %s/ca.pem 0", dir,
                          lst[SRV_ECDSA].port, dir);
    uint8_t none[32], empty[32];
    ASSERT(strncmp(out, "none=", 5) == 0);
    ASSERT(hex_decode(out + 5, none, 32) == 0);
    ASSERT(hex_decode(strstr(out, "empty=") + 6, empty, 32) == 0);
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    int ok = !memcmp(none, seen.exp_none, 32) && !memcmp(empty, seen.exp_empty, 32) &&
             memcmp(none, empty, 32) != 0 && seen.info.ems == 1;
    pthread_mutex_unlock(&mu);
    ASSERT(ok);
    /* pyOpenSSL with SSL_OP_NO_EXTENDED_MASTER_SECRET: flagged, exporter still consistent */
    n0 = opened();
    out = run("/usr/bin/python3 %s/cli.py export %d %s/ca.pem 1", dir, lst[SRV_ECDSA].port, dir);
    ASSERT(strncmp(out, "none=", 5) == 0);
    ASSERT(hex_decode(out + 5, none, 32) == 0);
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    ok = !memcmp(none, seen.exp_none, 32) && seen.info.ems == 0;
    pthread_mutex_unlock(&mu);
    ASSERT(ok);
}

TEST(tls11_refused_tls12_accepted)
{
    int f0 = log_count("reason=\"version too old\"");
    const char *out = s_client(lst[SRV_ECDSA].port, "-tls1_1 -cipher DEFAULT@SECLEVEL=0");
    ASSERT(!strstr(out, "Cipher is ECDHE"));
    ASSERT(wait_log("reason=\"version too old\"", f0));
    int n0 = opened();
    out = s_client(lst[SRV_ECDSA].port, "-tls1_2");
    ASSERT(strstr(out, "Protocol  : TLSv1.2") || strstr(out, "TLSv1.2, Cipher is"));
    ASSERT(wait_above(opened, n0));
}

TEST(resumed_session)
{
    const char *out = s_client(lst[SRV_ECDSA].port, "-tls1_2 -sess_out /dev/null");
    char extra[512];
    snprintf(extra, sizeof extra, "-tls1_2 -sess_out %s/sess.pem", dir);
    out = s_client(lst[SRV_ECDSA].port, extra);
    ASSERT(strstr(out, "New, TLSv1.2"));
    int n0 = opened();
    snprintf(extra, sizeof extra, "-tls1_2 -sess_in %s/sess.pem -keymatexport " LABEL
             " -keymatexportlen 32", dir);
    out = s_client(lst[SRV_ECDSA].port, extra);
    ASSERT(strstr(out, "Reused, TLSv1.2"));
    uint8_t want[32];
    const char *km = strstr(out, "Keying material: ");
    ASSERT(km && hex_decode(km + 17, want, 32) == 0);
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    int resumed = seen.info.resumed, same = !memcmp(want, seen.exp_none, 32);
    pthread_mutex_unlock(&mu);
    ASSERT_EQ(resumed, 1);
    ASSERT(same);
}

TEST(alpn_mqtt_selected_others_accepted)
{
    const char *out = s_client(lst[SRV_ECDSA].port, "-alpn mqtt");
    ASSERT(strstr(out, "ALPN protocol: mqtt"));
    int n0 = opened();
    out = s_client(lst[SRV_ECDSA].port, "-alpn h2,http/1.1");
    ASSERT(strstr(out, "No ALPN negotiated"));
    ASSERT(wait_above(opened, n0));
}


TEST(client_certificates)
{
    char extra[512];
    int port = lst[SRV_CLIENTCERT].port, n0 = opened();
    snprintf(extra, sizeof extra, "-cert %s/client1.pem -key %s/client1.key", dir, dir);
    const char *out = s_client(port, extra);
    ASSERT(strstr(out, "ECDHE-RSA"));
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    int ok = strcmp(seen.cert_id, "client1") == 0 && seen.info.use_identity_as_username;
    pthread_mutex_unlock(&mu);
    ASSERT(ok);
    /* no CN: the identity is the first SAN */
    n0 = opened();
    snprintf(extra, sizeof extra, "-cert %s/sanonly.pem -key %s/sanonly.key", dir, dir);
    s_client(port, extra);
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    ok = strcmp(seen.cert_id, "device7.example") == 0;
    pthread_mutex_unlock(&mu);
    ASSERT(ok);
    static const struct { const char *cert, *reason; } bad[] = {
        {"stranger", "reason=\"unknown CA\""},
        {"expired", "reason=\"client certificate expired\""},
        {"revoked", "reason=\"client certificate revoked\""},
        {NULL, "reason=\"no client certificate\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int f0 = log_count(bad[i].reason);
        n0 = opened();
        if (bad[i].cert)
            snprintf(extra, sizeof extra, "-cert %s/%s.pem -key %s/%s.key", dir, bad[i].cert,
                     dir, bad[i].cert);
        else
            extra[0] = 0;
        s_client(port, extra);
        ASSERT(wait_log(bad[i].reason, f0));
        ASSERT_EQ(opened(), n0);
    }
}

TEST(psk_right_key_accepted_wrong_key_refused)
{
    int port = lst[SRV_PSK].port, n0 = opened();
    const char *out = s_client(port, "-psk_identity dev1 -psk 00112233445566778899aabbccddeeff");
    ASSERT(strstr(out, "PSK"));
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    int ok = strcmp(seen.psk_id, "dev1") == 0 && strstr(seen.cipher, "PSK") != NULL;
    pthread_mutex_unlock(&mu);
    ASSERT(ok);
    int f0 = log_count("reason=\"bad PSK\"");
    n0 = opened();
    s_client(port, "-psk_identity dev1 -psk 00112233445566778899aabbccddeefe");
    ASSERT(wait_log("reason=\"bad PSK\"", f0));
    f0 = log_count("reason=\"bad PSK (unknown identity)\"");
    s_client(port, "-psk_identity nobody -psk 00112233445566778899aabbccddeeff");
    ASSERT(wait_log("reason=\"bad PSK (unknown identity)\"", f0));
    ASSERT_EQ(opened(), n0);
    /* identities the ACE layer resolves through psk_lookup */
    s_client(port, "-psk_identity ace-token-7 -psk a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    ok = strcmp(seen.psk_id, "ace-token-7") == 0;
    pthread_mutex_unlock(&mu);
    ASSERT(ok);
}

/* The hook runs inside mbedtls_ssl_handshake(), so the thread it runs on is the thread the
 * handshake computation runs on: never the loop thread. on_open, which must run on the loop
 * thread, shows that the comparison can tell the two apart. */
TEST(handshake_runs_off_the_loop_thread)
{
    int port = lst[SRV_PSK].port, n0 = opened();
    pthread_mutex_lock(&mu);
    int calls0 = seen.hook_calls;
    pthread_mutex_unlock(&mu);
    s_client(port, "-psk_identity ace-token-7 -psk a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    ASSERT(wait_above(opened, n0));
    pthread_mutex_lock(&mu);
    int calls = seen.hook_calls - calls0, on_loop = seen.hook_on_loop,
        open_off = seen.open_off_loop;
    pthread_mutex_unlock(&mu);
    ASSERT(calls >= 1);
    ASSERT_EQ(on_loop, 0);
    ASSERT_EQ(open_off, 0);
}

/* Reads the helper's output until a line starting with want. */
static int read_until(FILE *f, const char *want)
{
    char line[256];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, want, strlen(want)) == 0)
            return 1;
    return 0;
}

TEST(handshake_timeout_and_slot_cap)
{
    int port = lst[SRV_SHORT].port, t0 = log_count("event=tls_handshake_timeout");
    const char *out = run("/usr/bin/python3 %s/cli.py silent %d", dir, port);
    ASSERT(strstr(out, "closed after 1.") || strstr(out, "closed after 0.9"));
    ASSERT(wait_log("event=tls_handshake_timeout", t0));
    /* max_handshakes=1: a peer stuck after its ClientHello holds the only slot, so a second
     * client waits in the queue and completes once the first has timed out. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/cli.py hello %d 2", dir, port);
    FILE *stuck = popen(cmd, "r");
    ASSERT(stuck && read_until(stuck, "sent"));
    usleep(200000);
    int q0 = log_count("event=tls_handshake_queued"), n0 = opened();
    out = s_client(port, "");
    pclose(stuck);
    ASSERT(strstr(out, "Cipher is ECDHE"));
    ASSERT(log_count("event=tls_handshake_queued") > q0);
    ASSERT(wait_above(opened, n0));
}

TEST(reload_keeps_old_config_on_error_and_open_connections)
{
    char f[6][200], err[256];
    const char *names[] = {"srvchain.pem", "srv.key", "rsa.pem", "rsa.key", "broken.pem",
                           "missing.pem"};
    for (int i = 0; i < 6; i++)
        path(f[i], names[i]);
    tls_server_t *srv = lst[SRV_RELOAD].srv;
    int port = lst[SRV_RELOAD].port;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/cli.py many %d %s/ca.pem 1 1.5", dir, port,
             dir);
    FILE *held = popen(cmd, "r");
    ASSERT(held && read_until(held, "ready"));
    tls_server_config_t bad1 = {.certfile = f[4], .keyfile = f[1]};
    tls_server_config_t bad2 = {.certfile = f[5], .keyfile = f[1]};
    tls_server_config_t bad3 = {.certfile = f[0], .keyfile = f[3]};
    ASSERT(tls_server_reload(srv, &bad1, err, sizeof err) < 0);
    ASSERT(strstr(err, "broken.pem"));
    ASSERT(tls_server_reload(srv, &bad2, err, sizeof err) < 0);
    ASSERT(strstr(err, "missing.pem"));
    ASSERT(tls_server_reload(srv, &bad3, err, sizeof err) < 0);
    ASSERT(strstr(err, "does not match"));
    ASSERT(strstr(s_client(port, ""), "Cipher is ECDHE-ECDSA"));
    tls_server_config_t good = {.certfile = f[2], .keyfile = f[3]};
    ASSERT(tls_server_reload(srv, &good, err, sizeof err) == 0);
    ASSERT(strstr(s_client(port, ""), "Cipher is ECDHE-RSA"));
    ASSERT(read_until(held, "ok2")); /* the connection opened before keeps working */
    ASSERT_EQ(pclose(held), 0);
}

TEST(config_errors)
{
    char err[256], f[2][200];
    tls_server_t *srv;
    path(f[0], "srvchain.pem");
    path(f[1], "srv.key");
    tls_server_config_t old = {.certfile = f[0], .keyfile = f[1], .tls_version = "tlsv1.1"};
    ASSERT(tls_server_new(&srv, &old, err, sizeof err) < 0 && !srv);
    /* our own reasons carry no mbedTLS text ("Generic error" for -1 said nothing) */
    ASSERT(strstr(err, "only tlsv1.2 is supported") && !strstr(err, "Generic error"));
    tls_server_config_t cs = {.certfile = f[0], .keyfile = f[1],
                              .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_"
                                         "CHACHA20_POLY1305_SHA256:NOPE-CIPHER"};
    ASSERT(tls_server_new(&srv, &cs, err, sizeof err) < 0);
    ASSERT(strstr(err, "NOPE-CIPHER") && !strstr(err, "Generic error"));
    cs.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
    ASSERT(tls_server_new(&srv, &cs, err, sizeof err) == 0);
    tls_server_free(srv);
    tls_server_config_t nothing = {.cafile = f[0]};
    ASSERT(tls_server_new(&srv, &nothing, err, sizeof err) < 0);
    uint8_t out[8];
    ASSERT(tls_exporter(NULL, LABEL, NULL, 0, 0, out, 8) < 0);
    ASSERT(!stream_is_tls(NULL));
}

/* Resident set size in bytes (/proc/self/statm), 0 if unknown. */
static size_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

TEST(echo_many_and_memory_per_connection)
{
    enum { N = 50 };
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/cli.py many %d %s/ca.pem %d 1.0", dir,
             lst[SRV_ECDSA].port, dir, N);
    usleep(300000); /* let earlier connections finish closing */
    size_t before = mallinfo2().uordblks, rss0 = rss_bytes();
    FILE *f = popen(cmd, "r");
    ASSERT(f && read_until(f, "ready"));
    usleep(200000);
    size_t after = mallinfo2().uordblks, rss1 = rss_bytes();
    ASSERT(read_until(f, "ok2"));
    ASSERT_EQ(pclose(f), 0);
    if (after > before) /* mallinfo2 sees nothing under a sanitizer's allocator */
        printf("memory: %zu bytes heap in use, %zd bytes resident per idle TLS connection (%d "
               "connections)\n", (after - before) / N, (ssize_t)(rss1 - rss0) / N, N);
}

/* Handshakes run in the thread pool: an open connection keeps being served while many others
 * handshake (on the loop, 40 x ~4.7 ms of CPU would block it for ~190 ms). This test asserts
 * that echoes complete during the storm; the latency figure is printed for information and
 * measured properly by `make bench`, never asserted here (wall-clock bounds flake on a busy
 * machine). */
TEST(handshake_storm_does_not_stall_delivery)
{
    const char *out = run("/usr/bin/python3 %s/cli.py storm %d %s/ca.pem 40", dir,
                          lst[SRV_ECDSA].port, dir);
    const char *e = strstr(out, "echoes=");
    const char *w = strstr(out, "worst_rtt_ms=");
    ASSERT(e && w);
    ASSERT(atoi(e + 7) >= 1);
    printf("storm: %d echoes, worst round trip %.1f ms during 40 concurrent handshakes\n",
           atoi(e + 7), atof(w + 13));
}

int main(void)
{
    /* One arena, so mallinfo2 sees the loop thread's and the pool's allocations too. */
    mallopt(M_ARENA_MAX, 1);
    if (setup() != 0) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    RUN(exporter_matches_openssl_no_context);
    RUN(exporter_zero_length_context_and_no_ems);
    RUN(tls11_refused_tls12_accepted);
    RUN(resumed_session);
    RUN(alpn_mqtt_selected_others_accepted);
    RUN(client_certificates);
    RUN(psk_right_key_accepted_wrong_key_refused);
    RUN(handshake_runs_off_the_loop_thread);
    RUN(handshake_timeout_and_slot_cap);
    RUN(reload_keeps_old_config_on_error_and_open_connections);
    RUN(config_errors);
    RUN(echo_many_and_memory_per_connection);
    RUN(handshake_storm_does_not_stall_delivery);
    teardown();
    return test_summary();
}
