/*
 * tools/bench/ace.c: ACE (RFC 9431) for the load generator. A client presents a token in an
 * MQTT 5 CONNECT with Authentication Method "ace" and Authentication Data in Form A:
 * [u16 token length][token][PoP], the PoP being computed over the TLS exporter value of the
 * client's own session (label "EXPORTER-ACE-MQTT-Sign-Challenge", 32 bytes, zero-length
 * context; tls.c derives it). The PoP follows the cnf key's type: HMAC-SHA-256 (symmetric),
 * ES256 r||s (P-256) or Ed25519, computed by libacemq's ace_pop_sign().
 *
 * Tokens: --ace-token FILE gives one token to every connect (a broker's verified-token cache
 * then answers all but the first); --ace-token-dir DIR loads every regular file of DIR (in name
 * order) and hands them out one per connect, in turn across all loop threads, so a connect
 * storm presents a token the broker has not seen until the pool wraps around (counted as
 * reuses). Everything is loaded before the loops start; afterwards only read.
 */
#include "tools/bench/bench.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ace/keys.h"
#include "ace/pop.h"

typedef struct {
    uint8_t *p;
    size_t len;
} tok_t;

static struct {
    tok_t *tok;
    size_t ntok;
    ace_keypair_t key;
    _Atomic uint64_t next; /* connects that took a token so far */
} g_ace;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "acemq-bench: %s: %s\n", what, why);
    exit(2);
}

static bool is_jwt_text(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '_' || ch == '.' || ch == '\n' || ch == '\r';
        if (!ok)
            return false;
    }
    return true;
}

static void load_token(const char *path, tok_t *t)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, "cannot open the token");
    uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    /* 2 bytes of length, the token and a 64-byte PoP must fit the 65535-byte property. */
    if (!n || more || n > 65535 - 2 - ACE_POP_MAX_LEN)
        die(path, "the token is empty or too large for Authentication Data");
    /* A JWT (base64url text) may end with a newline an editor or the shell added; a CWT is
     * binary and keeps every byte. */
    if (is_jwt_text(buf, n))
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
    t->p = malloc(n);
    if (!t->p)
        die(path, "out of memory");
    memcpy(t->p, buf, n);
    t->len = n;
}

static int only_files(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static void load_dir(const char *dir)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, only_files, alphasort);
    if (n < 0)
        die(dir, "cannot read the directory");
    g_ace.tok = calloc((size_t)n + 1, sizeof *g_ace.tok);
    if (!g_ace.tok)
        die(dir, "out of memory");
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            load_token(path, &g_ace.tok[g_ace.ntok++]);
        free(ents[i]);
    }
    free(ents);
    if (!g_ace.ntok)
        die(dir, "holds no token files");
}

void bench_ace_init(void)
{
    if (ace_pop_init())
        die("ACE", "cannot initialise the PoP primitives");
    if (g_cfg.ace_token_dir) {
        load_dir(g_cfg.ace_token_dir);
    } else {
        g_ace.tok = calloc(1, sizeof *g_ace.tok);
        if (!g_ace.tok)
            die("ACE", "out of memory");
        load_token(g_cfg.ace_token, &g_ace.tok[0]);
        g_ace.ntok = 1;
    }
    const char *ty = g_cfg.ace_pop_type;
    size_t nk = 0;
    char err[256] = "";
    if (ace_keys_load_file(g_cfg.ace_pop_key, ty && strcmp(ty, "ed25519") == 0, &g_ace.key, 1,
                           &nk, err, sizeof err) || nk != 1)
        die(g_cfg.ace_pop_key, err[0] ? err : "not a key");
    ace_key_type_t t = g_ace.key.pub.type;
    if (ty && ((strcmp(ty, "sym") == 0 && t != ACE_KEY_SYMMETRIC) ||
               (strcmp(ty, "p256") == 0 && t != ACE_KEY_EC2_P256) ||
               (strcmp(ty, "ed25519") == 0 && t != ACE_KEY_OKP_ED25519)))
        die(g_cfg.ace_pop_key, "is not a key of the --ace-pop-type given");
    if (t != ACE_KEY_SYMMETRIC && !g_ace.key.has_private)
        die(g_cfg.ace_pop_key, "holds no private key (use the .key file, not .pub/.cose)");
}

size_t bench_ace_ntokens(void)
{
    return g_ace.ntok;
}

uint64_t bench_ace_used(void)
{
    return atomic_load(&g_ace.next);
}

const char *bench_ace_key_type(void)
{
    switch (g_ace.key.pub.type) {
    case ACE_KEY_SYMMETRIC: return "sym";
    case ACE_KEY_EC2_P256: return "p256";
    case ACE_KEY_OKP_ED25519: return "ed25519";
    }
    return "?";
}

/* Authentication Data, Form A, for one connect over a session with this exporter value:
 * a malloc'd buffer the caller frees after encoding the CONNECT. NULL on failure. */
uint8_t *bench_ace_auth_data(const uint8_t exporter[32], size_t *len)
{
    uint64_t i = atomic_fetch_add(&g_ace.next, 1);
    const tok_t *t = &g_ace.tok[i % g_ace.ntok];
    uint8_t pop[ACE_POP_MAX_LEN];
    size_t pop_len = 0;
    const ace_keypair_t *k = &g_ace.key;
    const uint8_t *secret = k->pub.type == ACE_KEY_SYMMETRIC ? k->pub.k : k->d;
    size_t secret_len = k->pub.type == ACE_KEY_SYMMETRIC ? k->pub.k_len : sizeof k->d;
    if (ace_pop_sign(k->pub.type, secret, secret_len, exporter, 32, pop, &pop_len))
        return NULL;
    uint8_t *d = malloc(2 + t->len + pop_len);
    if (!d)
        return NULL;
    d[0] = (uint8_t)(t->len >> 8);
    d[1] = (uint8_t)t->len;
    memcpy(d + 2, t->p, t->len);
    memcpy(d + 2 + t->len, pop, pop_len);
    *len = 2 + t->len + pop_len;
    return d;
}

void bench_ace_free(void)
{
    for (size_t i = 0; i < g_ace.ntok; i++)
        free(g_ace.tok[i].p);
    free(g_ace.tok);
    ace_keypair_wipe(&g_ace.key);
}
