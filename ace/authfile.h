/*
 * ace/authfile.h: Mosquitto-compatible `password_file` and `acl_file`, for clients that do not use
 * ACE tokens (username/password over TLS) and for topics outside any token's scope.
 *
 * Password file: one `user:hash` per line ('#' comments and blank lines skipped). Hashes are
 * Mosquitto 2's `$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512, 64 bytes>` and, for old
 * files, Mosquitto 1.x's `$6$<base64 salt>$<base64 SHA-512(password || salt)>`. Plain-text passwords
 * are refused (hash them with `acemq-passwd -U`). A user listed twice is an error.
 *
 * ACL file (Mosquitto syntax):
 *   topic [read|write|readwrite|deny] <filter>    for the current user; before any `user` line, for
 *                                                 anonymous clients (no username)
 *   user <name>                                   starts that user's section
 *   pattern [read|write|readwrite|deny] <filter>  for every client; %c is replaced by the client id,
 *                                                 %u by the username (skipped when there is none)
 * The access word may be left out (readwrite). '#' starts a comment only at the start of a line.
 * Decision: deny rules win over allow rules; otherwise a request is allowed if an allow rule with
 * the requested access matches, and denied if none does. A client id or username containing '+' or
 * '#' is denied outright when a pattern would substitute it (as Mosquitto does).
 *
 * Errors are 0 or a negative ACE_E_* code (ace/token.h): ACE_E_IO (file), ACE_E_MALFORMED (a bad
 * line; *err_line says which, 1-based), ACE_E_TOO_LARGE, ACE_E_NOMEM, ACE_E_ARG. Nothing here logs
 * passwords or hashes. Loaded files are read-only and may be shared between threads.
 */
#ifndef ACEMQ_ACE_AUTHFILE_H
#define ACEMQ_ACE_AUTHFILE_H

#include <stddef.h>
#include <stdint.h>

#define ACE_PW_DEFAULT_ITERATIONS 101u /* what mosquitto_passwd 2.0 writes */
#define ACE_PW_MAX_ITERATIONS 10000000u
#define ACE_PW_SALT_LEN 12u
#define ACE_PW_HASH_BUF 160u /* room for any "$7$..." string this module writes, with its NUL */
#define ACE_AUTHFILE_MAX_BYTES (16u << 20)

/* ---- passwords ---- */

/* Writes "$7$<iterations>$<salt>$<hash>" with a fresh random salt. */
int ace_pw_hash(const uint8_t *pw, size_t pw_len, unsigned iterations, char *out, size_t cap);

/* 0 if the password matches the hash string ($7$ or $6$), ACE_E_BAD_SIGNATURE if it does not,
 * ACE_E_MALFORMED if the hash string is not one of the two forms. */
int ace_pw_verify(const char *hash, size_t hash_len, const uint8_t *pw, size_t pw_len);

typedef struct ace_pwfile ace_pwfile_t;

int ace_pwfile_parse(const char *text, size_t len, ace_pwfile_t **out, size_t *err_line);
int ace_pwfile_load(const char *path, ace_pwfile_t **out, size_t *err_line);
void ace_pwfile_free(ace_pwfile_t *pf);
size_t ace_pwfile_count(const ace_pwfile_t *pf);

/* 0 if `user` is listed and the password matches; ACE_E_BAD_SIGNATURE otherwise. An unknown user
 * costs the same time as a wrong password. */
int ace_pwfile_check(const ace_pwfile_t *pf, const char *user, const uint8_t *pw, size_t pw_len);

/* ---- ACLs ---- */

enum { ACE_ACL_READ = 1, ACE_ACL_WRITE = 2 };

typedef struct ace_acl ace_acl_t;

int ace_acl_parse(const char *text, size_t len, ace_acl_t **out, size_t *err_line);
int ace_acl_load(const char *path, ace_acl_t **out, size_t *err_line);
void ace_acl_free(ace_acl_t *acl);

/* 1 if the client may do `access` (ACE_ACL_READ to receive, ACE_ACL_WRITE to publish) on a topic
 * name. username NULL = anonymous; clientid NULL = unknown (patterns using %c do not apply). */
int ace_acl_check(const ace_acl_t *acl, const char *username, const char *clientid, unsigned access,
                  const char *topic, size_t len);

/* 1 if the client may subscribe to `filter`: a read rule's filter covers it (ace_filter_subset) and
 * no deny rule covers it. Each delivery must still pass ace_acl_check(ACE_ACL_READ), which applies
 * deny rules that only overlap the filter. */
int ace_acl_check_subscribe(const ace_acl_t *acl, const char *username, const char *clientid,
                            const char *filter, size_t len);

#endif
