/*
 * tests/fuzz/config_fuzz.c: libFuzzer target for the configuration parser (config_load_string).
 *
 * The input is the text of a configuration file. A text that loads is compared with the defaults
 * (config_needs_restart) and with itself, given a `-p` listener, and freed twice (config_free
 * must be idempotent); a text that fails must leave the config zeroed and say why in the error
 * buffer. Inputs that mention `include` are skipped: include_dir reads directories of this
 * machine, which is neither deterministic nor what this target is for.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/config.h"

static bool mentions_include(const char *s, size_t n)
{
    for (size_t i = 0; i + 7 <= n; i++)
        if (strncasecmp(s + i, "include", 7) == 0)
            return true;
    return false;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static acemq_config_t base;
    static bool have_base;
    if (!have_base) {
        char e[256];
        if (config_load_string(&base, "", "base", e, sizeof e) != 0)
            abort();
        have_base = true;
    }
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0'; /* a NUL inside ends the text early, as a C string would */
    if (mentions_include(text, strlen(text))) {
        free(text);
        return 0;
    }

    acemq_config_t c;
    char err[512];
    memset(err, 'x', sizeof err);
    int rc = config_load_string(&c, text, "fuzz.conf", err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        abort(); /* the error buffer must always hold a string */
    if (rc != 0) {
        if (rc != -1 || err[0] == '\0' || !all_zero(&c, sizeof c))
            abort();
        free(text);
        return 0;
    }
    char msg[1024];
    (void)config_needs_restart(&base, &c, msg, sizeof msg);
    if (memchr(msg, '\0', sizeof msg) == NULL)
        abort();
    if (config_needs_restart(&c, &c, msg, sizeof msg) != 0 || msg[0] != '\0')
        abort(); /* a config never differs from itself */

    acemq_config_t again;
    char err2[512];
    if (config_load_string(&again, text, "fuzz.conf", err2, sizeof err2) != 0)
        abort(); /* loading is deterministic */
    if (config_needs_restart(&c, &again, msg, sizeof msg) != 0)
        abort();
    config_free(&again);

    (void)config_add_listener(&c, 1883, NULL);
    config_free(&c);
    config_free(&c);
    free(text);
    return 0;
}
