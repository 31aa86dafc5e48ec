/*
 * tools/token/tool.h: what the acemq-token subcommands share: option lookup, file helpers and the
 * subcommand entry points (main.c: dispatch, keygen, pop; mint.c: mint; inspect.c: inspect).
 */
#ifndef ACEMQ_TOOL_TOKEN_H
#define ACEMQ_TOOL_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "ace/keys.h"

/* Options are "--name value" pairs or "--flag"; opt() returns the value after --name or NULL. */
typedef struct {
    int argc;
    char **argv;
} args_t;

const char *opt(const args_t *a, const char *name);
int flag(const args_t *a, const char *name);
/* Fails with a message unless every argument is a known option (names: NULL-terminated list of
 * "--name" for options with a value and "--name!" for flags). */
int check_args(const args_t *a, const char *const *names);

int die(const char *fmt, ...);                      /* prints "acemq-token: ..." and returns 1 */
int write_file(const char *path, const void *p, size_t n, int secret);
uint8_t *read_file(const char *path, size_t max, size_t *n);
/* Loads exactly one key; type_hint "ed25519" makes a hex file an Ed25519 seed. */
int load_key(const char *path, const char *type_hint, ace_keypair_t *kp);
int hex_arg(const char *s, uint8_t *out, size_t cap, size_t *n);

int cmd_mint(const args_t *a);
int cmd_inspect(const args_t *a);

#endif
