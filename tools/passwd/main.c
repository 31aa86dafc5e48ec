/*
 * tools/passwd/main.c: acemq-passwd, a mosquitto_passwd work-alike that writes Mosquitto 2 password
 * files ("user:$7$<iterations>$<salt>$<PBKDF2-SHA512>"), readable by acemqd and by Mosquitto.
 *
 *   acemq-passwd [-c] [-I iterations] FILE USER            prompt for the password (twice)
 *   acemq-passwd [-c] [-I iterations] -b FILE USER PASSWORD
 *   acemq-passwd -D FILE USER                              delete USER
 *   acemq-passwd -U [-I iterations] FILE                   hash a file of "user:plaintext" lines
 *
 * -c creates (or truncates) FILE. The file is rewritten through a temporary file and rename(), with
 * mode 0600 for a new file and the old mode otherwise. Passwords are never printed.
 */
#include "ace/authfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define MAX_PW 1024

static void usage(void)
{
    fprintf(stderr, "usage: acemq-passwd [-c] [-I iterations] [-b] FILE USER [PASSWORD]\n"
                    "       acemq-passwd -D FILE USER\n"
                    "       acemq-passwd -U [-I iterations] FILE\n");
    exit(2);
}

/* Reads one line from the terminal without echo. */
static int read_password(const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    FILE *tty = fopen("/dev/tty", "r+");
    FILE *in = tty ? tty : stdin;
    int echo_off = tcgetattr(fileno(in), &old) == 0;
    int ok;
    fputs(prompt, tty ? tty : stderr);
    fflush(tty ? tty : stderr);
    if (echo_off) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(in), TCSAFLUSH, &quiet);
    }
    ok = fgets(buf, (int)cap, in) != NULL;
    if (echo_off) {
        tcsetattr(fileno(in), TCSAFLUSH, &old);
        fputc('\n', tty ? tty : stderr);
    }
    if (tty)
        fclose(tty);
    if (!ok)
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* Reads the whole file (missing = empty when allowed). */
static char *slurp(const char *path, int missing_ok, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    if (!f) {
        if (missing_ok && errno == ENOENT)
            return calloc(1, 1);
        fprintf(stderr, "acemq-passwd: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (*len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap * 2 + 8192);
            if (!nb || cap > ACE_AUTHFILE_MAX_BYTES) {
                free(nb ? nb : buf);
                fclose(f);
                fprintf(stderr, "acemq-passwd: %s is too large\n", path);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + *len, 1, 4096, f);
        *len += n;
        if (n < 4096)
            break;
    }
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* Writes `text` to path via a temporary file in the same directory, then renames it over. */
static int write_atomic(const char *path, const char *text, size_t len)
{
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0600;
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 8);
    int fd, rc = -1;
    if (!tmp)
        return -1;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".XXXXXX", 8);
    fd = mkstemp(tmp);
    if (fd >= 0) {
        if (fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0)
            rc = 0;
        if (close(fd) != 0)
            rc = -1;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -1;
        if (rc != 0)
            unlink(tmp);
    }
    if (rc != 0)
        fprintf(stderr, "acemq-passwd: cannot write %s: %s\n", path, strerror(errno));
    free(tmp);
    return rc;
}

/* Appends to a growing output buffer; exits on allocation failure. */
static void out_add(char **o, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n + len + 1 > *cap) {
        *cap = (*n + len + 1) * 2;
        if (!(*o = realloc(*o, *cap))) {
            fputs("acemq-passwd: out of memory\n", stderr);
            exit(1);
        }
    }
    memcpy(*o + *n, s, len);
    *n += len;
    (*o)[*n] = '\0';
}

/* 1 if the text after "user:" is already a $6$ or $7$ hash. */
static int is_hashed(const char *s, const char *end)
{
    return end - s >= 3 && s[0] == '$' && (s[1] == '6' || s[1] == '7') && s[2] == '$';
}

/* Rewrites the file: each "user:..." line is kept, dropped (user == NULL: none), replaced by
 * user:hash (for USER), or, in hash_all mode, turned from plaintext into a hash. */
static int rewrite(const char *path, const char *text, size_t len, const char *user,
                   const char *hash, int hash_all, unsigned iterations)
{
    char *o = NULL, h[ACE_PW_HASH_BUF];
    size_t on = 0, ocap = 0, ul = user ? strlen(user) : 0;
    const char *p = text, *end = text + len;
    int found = 0, rc;
    out_add(&o, &on, &ocap, "", 0);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)((nl ? nl : end) - p);
        const char *colon = memchr(p, ':', ll);
        int is_user = colon && user && (size_t)(colon - p) == ul && memcmp(p, user, ul) == 0;
        if (is_user) {
            found = 1;
            if (hash) {
                out_add(&o, &on, &ocap, user, ul);
                out_add(&o, &on, &ocap, ":", 1);
                out_add(&o, &on, &ocap, hash, strlen(hash));
                out_add(&o, &on, &ocap, "\n", 1);
            }
        } else if (hash_all && colon && p[0] != '#' && !is_hashed(colon + 1, end)) {
            size_t pl = ll - (size_t)(colon + 1 - p);
            if (pl > 0 && colon[pl] == '\r')
                pl--;
            if (ace_pw_hash((const uint8_t *)colon + 1, pl, iterations, h, sizeof h) != 0)
                return free(o), 1;
            out_add(&o, &on, &ocap, p, (size_t)(colon + 1 - p));
            out_add(&o, &on, &ocap, h, strlen(h));
            out_add(&o, &on, &ocap, "\n", 1);
        } else if (ll > 0) {
            out_add(&o, &on, &ocap, p, ll);
            out_add(&o, &on, &ocap, "\n", 1);
        }
        p = nl ? nl + 1 : end;
    }
    if (user && hash && !found) {
        out_add(&o, &on, &ocap, user, ul);
        out_add(&o, &on, &ocap, ":", 1);
        out_add(&o, &on, &ocap, hash, strlen(hash));
        out_add(&o, &on, &ocap, "\n", 1);
    }
    if (user && !hash && !found)
        fprintf(stderr, "acemq-passwd: user %s not found\n", user);
    rc = (user && !hash && !found) ? 1 : (write_atomic(path, o, on) == 0 ? 0 : 1);
    free(o);
    return rc;
}

static int get_password(int batch, char **argv, int argi, int argc, char *pw)
{
    char again[MAX_PW];
    if (batch) {
        if (argi >= argc || strlen(argv[argi]) >= MAX_PW)
            usage();
        strcpy(pw, argv[argi]);
        return 0;
    }
    if (argi != argc)
        usage();
    if (read_password("Password: ", pw, MAX_PW) != 0 ||
        read_password("Reenter password: ", again, sizeof again) != 0) {
        fputs("acemq-passwd: no password read\n", stderr);
        return 1;
    }
    if (strcmp(pw, again) != 0) {
        fputs("acemq-passwd: passwords do not match\n", stderr);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int create = 0, batch = 0, del = 0, upgrade = 0, opt, rc;
    unsigned iterations = ACE_PW_DEFAULT_ITERATIONS;
    char pw[MAX_PW], hash[ACE_PW_HASH_BUF], *text;
    size_t len;
    while ((opt = getopt(argc, argv, "cbDUI:")) != -1) {
        switch (opt) {
        case 'c': create = 1; break;
        case 'b': batch = 1; break;
        case 'D': del = 1; break;
        case 'U': upgrade = 1; break;
        case 'I': {
            char *e;
            unsigned long v = strtoul(optarg, &e, 10);
            if (*e || v == 0 || v > ACE_PW_MAX_ITERATIONS)
                usage();
            iterations = (unsigned)v;
            break;
        }
        default: usage();
        }
    }
    if (del + upgrade + (create || batch) > 1)
        usage();
    if (upgrade) {
        if (optind + 1 != argc)
            usage();
        if (!(text = slurp(argv[optind], 0, &len)))
            return 1;
        rc = rewrite(argv[optind], text, len, NULL, NULL, 1, iterations);
        free(text);
        return rc;
    }
    if (optind + 2 > argc || strchr(argv[optind + 1], ':') || !argv[optind + 1][0])
        usage();
    if (del) {
        if (optind + 2 != argc || !(text = slurp(argv[optind], 0, &len)))
            return 1;
        rc = rewrite(argv[optind], text, len, argv[optind + 1], NULL, 0, iterations);
        free(text);
        return rc;
    }
    if (get_password(batch, argv, optind + 2, argc, pw) != 0)
        return 1;
    if (batch && optind + 3 != argc)
        usage();
    rc = ace_pw_hash((const uint8_t *)pw, strlen(pw), iterations, hash, sizeof hash);
    memset(pw, 0, sizeof pw);
    if (rc != 0) {
        fputs("acemq-passwd: hashing failed\n", stderr);
        return 1;
    }
    if (!(text = create ? calloc(1, 1) : slurp(argv[optind], 0, &len)))
        return 1;
    if (create)
        len = 0;
    rc = rewrite(argv[optind], text, len, argv[optind + 1], hash, 0, iterations);
    free(text);
    return rc;
}
