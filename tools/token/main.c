/*
 * tools/token/main.c: acemq-token, the operator's and the tests' tool for ACE key material and
 * tokens: `keygen` (symmetric, P-256, Ed25519 keys in PEM/hex/JWK/COSE_Key files), `mint` (CWT and
 * JWT access tokens), `pop` (the proof-of-possession value a client sends) and `inspect`. This file
 * holds the dispatch, the shared helpers, keygen and pop. Key bytes are written only to files
 * (private ones mode 0600) and never to the terminal, except pop's output, which is a MAC/signature.
 */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/token/tool.h"

static const char usage[] =
    "usage: acemq-token <command> [options]\n"
    "\n"
    "  keygen  --type sym|p256|ed25519 --out PREFIX [--kid TEXT] [--bytes N]\n"
    "          writes PREFIX.key (private: hex for sym, PEM for p256, hex seed for ed25519),\n"
    "          PREFIX.pub (p256: PEM, ed25519: hex), PREFIX.jwk and PREFIX.cose (public forms;\n"
    "          for sym they hold the secret key and are written mode 0600)\n"
    "  mint    --format cwt-sign1|cwt-mac0|cwt-encrypt0|cwt-nested|jwt-es256|jwt-hs256\n"
    "          --key FILE [--enc-key FILE] --iss ISS --aud AUD [--sub SUB]\n"
    "          [--exp SECONDS_FROM_NOW | --exp-at T] [--nbf-at T] [--no-iat]\n"
    "          [--scope JSON_AIF | --scope-text TEXT] [--cnf-key FILE [--cnf-type ed25519]\n"
    "          [--cnf-encrypt] | --cnf-kid HEX] [--cti HEX] [--exi SECONDS] [--cnonce HEX]\n"
    "          [--profile N|mqtt_tls] [--mac-alg 4|5] [--tag61] --out FILE [--b64url]\n"
    "          cwt-nested: Encrypt0 (--enc-key, AES-128) around Sign1 (--key);\n"
    "          --cnf-encrypt: cnf as an Encrypted_COSE_Key under --enc-key\n"
    "  pop     --key FILE [--type sym|p256|ed25519] (--exporter HEX | --nonce HEX)\n"
    "          prints the PoP over the challenge as hex: HMAC-SHA-256 (sym), Ed25519,\n"
    "          or ES256 r||s (p256)\n"
    "  inspect --token FILE [--trust-iss ISS --trust-key FILE... --aud AUD] [--now T]\n"
    "          decodes the token (key material redacted); verifies it when trust is given\n"
    "\n"
    "Exit status 0 on success, 1 with a message on any error.\n";

int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("acemq-token: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

const char *opt(const args_t *a, const char *name)
{
    for (int i = 0; i + 1 < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0)
            return a->argv[i + 1];
    return NULL;
}

int flag(const args_t *a, const char *name)
{
    for (int i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0)
            return 1;
    return 0;
}

int check_args(const args_t *a, const char *const *names)
{
    for (int i = 0; i < a->argc; i++) {
        int known = 0;
        for (const char *const *n = names; *n && !known; n++) {
            size_t len = strlen(*n);
            int is_flag = (*n)[len - 1] == '!';
            if (strncmp(a->argv[i], *n, len - is_flag) != 0 || a->argv[i][len - is_flag] != '\0')
                continue;
            known = 1;
            if (!is_flag && ++i >= a->argc)
                return die("%s needs a value", *n);
        }
        if (!known)
            return die("unknown argument '%s' (see --help)", a->argv[i]);
    }
    return 0;
}

int write_file(const char *path, const void *p, size_t n, int secret)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0)
        return die("cannot write %s: %s", path, strerror(errno));
    if (secret)
        (void)fchmod(fd, 0600); /* an existing file keeps its mode otherwise */
    ssize_t w = write(fd, p, n);
    if (close(fd) != 0 || w < 0 || (size_t)w != n)
        return die("cannot write %s", path);
    return 0;
}

uint8_t *read_file(const char *path, size_t max, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        die("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = malloc(max + 1);
    *n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || *n > max) {
        free(buf);
        die("%s is larger than %zu bytes", path, max);
        return NULL;
    }
    return buf;
}

int load_key(const char *path, const char *type_hint, ace_keypair_t *kp)
{
    char err[160] = "";
    size_t n = 0;
    if (!path)
        return die("a key file is required");
    int ed = type_hint && strcmp(type_hint, "ed25519") == 0;
    if (ace_keys_load_file(path, ed, kp, 1, &n, err, sizeof(err)) != 0 || n != 1)
        return die("%s: %s", path, err[0] ? err : "not exactly one key");
    return 0;
}

int hex_arg(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    if (!s || ace_hex_decode(s, strlen(s), out, cap, n) != 0)
        return die("'%s' is not hex of at most %zu bytes", s ? s : "", cap);
    return 0;
}

static int keygen_write(const ace_keypair_t *k, const char *type, const char *prefix)
{
    char path[4096], pem[1024], hex[2 * 64 + 2];
    char *jwk = NULL;
    uint8_t *cose = NULL;
    size_t cose_len;
    int sym = strcmp(type, "sym") == 0, rc = 0;
    snprintf(path, sizeof(path), "%s.key", prefix);
    if (strcmp(type, "p256") == 0) {
        rc = ace_key_to_pem(k, 1, pem, sizeof(pem)) || write_file(path, pem, strlen(pem), 1);
        snprintf(path, sizeof(path), "%s.pub", prefix);
        rc = rc || ace_key_to_pem(k, 0, pem, sizeof(pem)) || write_file(path, pem, strlen(pem), 0);
    } else {
        ace_hex_encode(sym ? k->pub.k : k->d, sym ? k->pub.k_len : 32, hex);
        strcat(hex, "\n");
        rc = write_file(path, hex, strlen(hex), 1);
        if (!sym) {
            snprintf(path, sizeof(path), "%s.pub", prefix);
            ace_hex_encode(k->pub.k, 32, hex);
            strcat(hex, "\n");
            rc = rc || write_file(path, hex, strlen(hex), 0);
        }
    }
    snprintf(path, sizeof(path), "%s.jwk", prefix);
    rc = rc || ace_key_to_jwk(k, 0, &jwk) || write_file(path, jwk, strlen(jwk), sym);
    snprintf(path, sizeof(path), "%s.cose", prefix);
    rc = rc || ace_key_to_cose(k, 0, &cose, &cose_len) || write_file(path, cose, cose_len, sym);
    if (jwk)
        mbedtls_platform_zeroize(jwk, strlen(jwk));
    free(jwk);
    free(cose);
    mbedtls_platform_zeroize(pem, sizeof(pem));
    mbedtls_platform_zeroize(hex, sizeof(hex));
    return rc ? die("cannot write the key files for %s", prefix) : 0;
}

static int cmd_keygen(const args_t *a)
{
    static const char *const names[] = {"--type", "--out", "--kid", "--bytes", NULL};
    const char *type = opt(a, "--type"), *prefix = opt(a, "--out"), *kid = opt(a, "--kid");
    if (check_args(a, names))
        return 1;
    if (!type || !prefix)
        return die("keygen needs --type and --out");
    ace_keypair_t k;
    size_t bytes = opt(a, "--bytes") ? strtoul(opt(a, "--bytes"), NULL, 10) : 32;
    ace_key_type_t kt = strcmp(type, "sym") == 0 ? ACE_KEY_SYMMETRIC
                        : strcmp(type, "p256") == 0 ? ACE_KEY_EC2_P256
                        : strcmp(type, "ed25519") == 0 ? ACE_KEY_OKP_ED25519 : (ace_key_type_t)-1;
    if ((int)kt < 0)
        return die("--type must be sym, p256 or ed25519");
    if (kid && strlen(kid) > sizeof(k.pub.kid))
        return die("--kid is longer than %zu bytes", sizeof(k.pub.kid));
    if (ace_key_generate(kt, bytes, &k) != 0)
        return die("cannot generate the key (sym keys are 1..64 bytes)");
    if (kid) {
        memcpy(k.pub.kid, kid, strlen(kid));
        k.pub.kid_len = strlen(kid);
    }
    int rc = keygen_write(&k, type, prefix);
    ace_keypair_wipe(&k);
    return rc;
}

static int cmd_pop(const args_t *a)
{
    static const char *const names[] = {"--key", "--type", "--exporter", "--nonce", NULL};
    uint8_t ch[256], out[64];
    size_t ch_len = 0, out_len = 0;
    ace_keypair_t k;
    const char *c = opt(a, "--exporter") ? opt(a, "--exporter") : opt(a, "--nonce");
    if (check_args(a, names) || load_key(opt(a, "--key"), opt(a, "--type"), &k))
        return 1;
    if (!c || (opt(a, "--exporter") && opt(a, "--nonce")))
        return die("pop needs exactly one of --exporter HEX or --nonce HEX");
    if (hex_arg(c, ch, sizeof(ch), &ch_len))
        return 1;
    int rc = 0;
    if (k.pub.type == ACE_KEY_SYMMETRIC) {
        rc = mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), k.pub.k, k.pub.k_len,
                             ch, ch_len, out);
        out_len = 32;
    } else if (!k.has_private) {
        rc = die("pop needs the private key (the .key file)");
    } else if (k.pub.type == ACE_KEY_EC2_P256) {
        rc = ace_es256_sign(&k, ch, ch_len, out);
        out_len = 64;
    } else {
        uint8_t pk[32], sk[64];
        rc = sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, k.d) != 0 ||
             crypto_sign_detached(out, NULL, ch, ch_len, sk) != 0;
        mbedtls_platform_zeroize(sk, sizeof(sk));
        out_len = 64;
    }
    ace_keypair_wipe(&k);
    if (rc)
        return rc == 1 ? 1 : die("cannot compute the PoP");
    char hex[2 * 64 + 1];
    ace_hex_encode(out, out_len, hex);
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    args_t a = {argc - 2, argv + 2};
    if (flag(&a, "--help") || flag(&a, "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(&a);
    if (strcmp(argv[1], "mint") == 0)
        return cmd_mint(&a);
    if (strcmp(argv[1], "pop") == 0)
        return cmd_pop(&a);
    if (strcmp(argv[1], "inspect") == 0)
        return cmd_inspect(&a);
    return die("unknown command '%s' (see --help)", argv[1]);
}
