/*
 * tools/store/main.c: acemq-store, the operator's view of a persistence store.
 *
 *   acemq-store DIR [FILE]     print the store DIR/FILE (FILE defaults to acemq.db)
 *   acemq-store PATH           print the store file PATH
 *
 * Prints the file size and record counts, the durable sessions with their subscriptions, queued
 * and in-flight messages (topic and size, never payload bytes) and the retained topics. Reads
 * only: a torn tail is reported, not cut (acemqd cuts it at its next start). Exit status 0, or 1
 * when the store cannot be read (the message names the file and offset).
 */
#include <stdio.h>
#include <string.h>

#include "broker/store.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: acemq-store DIR [FILE] | acemq-store PATH\n");
        return argc < 2 ? 2 : 0;
    }
    char err[1024];
    if (store_dump(argv[1], argc == 3 ? argv[2] : NULL, stdout, err, sizeof err) < 0) {
        fprintf(stderr, "acemq-store: %s\n", err);
        return 1;
    }
    return 0;
}
