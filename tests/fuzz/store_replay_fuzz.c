/*
 * tests/fuzz/store_replay_fuzz.c: libFuzzer target for reading a store file back
 * (store_file_replay in broker/store_file.c, with the record decoder and the live state behind
 * it): the code that runs at every start on whatever a crash or a disk left behind.
 *
 * The input is the file's bytes, written to a scratch file (under /dev/shm when there is one)
 * and replayed as they are; then once more with the header's and every frame's CRC32 made
 * right, so that mutations reach the record decoder and the state rather than stopping at the
 * checksum. Whatever the bytes, the replay must not crash, leak or read out of bounds, and:
 * - a refusal names the file and an offset, and leaves the file as it was;
 * - an accepted file accounts for every byte (valid + dropped = size), is cut at the end of its
 *   last good record, and replays again to the same state with nothing left to drop;
 * - a snapshot of the replayed state replays into the same state (sessions, stored messages,
 *   retained messages, live size), and a snapshot of that has the same size.
 *
 * Seeds (tests/fuzz/corpus/store_replay/) are small stores written by acemqd (durable sessions
 * with subscriptions, queued and in-flight QoS 1/2 messages, incoming QoS 2 ids, retained
 * messages, a compacted snapshot) and a few damaged copies of them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/store_int.h"

static char dir[256], path[300], snap[300];

static void cleanup(void)
{
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", snap);
    unlink(tmp);
    unlink(snap);
    unlink(path);
    rmdir(dir);
}

static void setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/acemq-store-fuzz-XXXXXX", base);
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/in.db", dir);
    snprintf(snap, sizeof snap, "%s/snap.db", dir);
    atexit(cleanup);
}

static void write_input(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0)
            abort();
        data += n;
        size -= (size_t)n;
    }
    close(fd);
}

static long size_of(const char *p)
{
    struct stat sb;
    return stat(p, &sb) < 0 ? -1 : (long)sb.st_size;
}

/* What must survive a replay of the cut file or of a snapshot. */
typedef struct {
    size_t sessions, clients, msgs, retained;
    uint64_t live;
} shape_t;

static shape_t shape(const store_state_t *s)
{
    return (shape_t){kv_count(s->sessions), kv_count(s->clients), kv_count(s->msgs),
                     kv_count(s->retained), s->live_bytes};
}

static bool same(shape_t a, shape_t b)
{
    return a.sessions == b.sessions && a.clients == b.clients && a.msgs == b.msgs &&
           a.retained == b.retained && a.live == b.live;
}

/* Replays `file` into a fresh state, which must succeed with nothing to drop. */
static void replay_clean(const char *file, store_state_t *s, store_replay_t *info)
{
    char err[1024];
    if (store_state_init(s) < 0 || store_file_replay(file, s, false, info, err, sizeof err) < 0 ||
        info->dropped_bytes != 0)
        abort();
}

/* Writes a snapshot of s to snap; returns its size. */
static uint64_t snapshot(store_state_t *s)
{
    char err[1024];
    uint64_t size = 0;
    int fd = store_file_write_snapshot(snap, s, &size, err, sizeof err);
    if (fd < 0 || (long)size != size_of(snap))
        abort();
    close(fd);
    return size;
}

static void check_accepted(store_state_t *s, const store_replay_t *info, size_t size)
{
    if (info->file_bytes != size || info->dropped_bytes > size)
        abort();
    if (size >= STORE_HEADER_SIZE && info->valid_bytes + info->dropped_bytes != size)
        abort(); /* every byte is a good record or part of the torn tail */
    if (size_of(path) != (long)(size - info->dropped_bytes))
        abort(); /* cut at the end of the last good record */
    store_state_t again, copy;
    store_replay_t info2, info3;
    replay_clean(path, &again, &info2);
    if (info2.records != info->records || !same(shape(&again), shape(s)))
        abort();
    store_state_free(&again);
    uint64_t first = snapshot(s);
    replay_clean(snap, &copy, &info3);
    if (!same(shape(&copy), shape(s)))
        abort();
    if (snapshot(&copy) != first)
        abort();
    store_state_free(&copy);
}

static void put_le32(uint8_t *at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        at[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites the checksums of the header and of the frames that follow each other from offset
 * 16; returns whether anything changed. */
static bool fix_checksums(uint8_t *p, size_t size)
{
    uint8_t before[4];
    bool changed = false;
    if (size >= STORE_HEADER_SIZE && memcmp(p, store_file_magic, 8) == 0) {
        memcpy(before, p + 12, 4);
        put_le32(p + 12, store_crc32(0, p, 12));
        changed |= memcmp(before, p + 12, 4) != 0;
    }
    size_t off = STORE_HEADER_SIZE;
    while (off + STORE_REC_OVERHEAD <= size && p[off] == STORE_REC_MAGIC) {
        uint32_t len = (uint32_t)p[off + 2] | (uint32_t)p[off + 3] << 8 |
                       (uint32_t)p[off + 4] << 16 | (uint32_t)p[off + 5] << 24;
        if (len > size - off - STORE_REC_OVERHEAD)
            break;
        memcpy(before, p + off + 6 + len, 4);
        put_le32(p + off + 6 + len, store_crc32(0, p + off, 6 + (size_t)len));
        changed |= memcmp(before, p + off + 6 + len, 4) != 0;
        off += STORE_REC_OVERHEAD + len;
    }
    return changed;
}

static void replay_input(const uint8_t *data, size_t size)
{
    write_input(data, size);
    store_state_t s;
    store_replay_t info;
    char err[1024];
    memset(err, 'x', sizeof err);
    if (store_state_init(&s) < 0)
        abort();
    int rc = store_file_replay(path, &s, false, &info, err, sizeof err);
    if (rc == 0) {
        check_accepted(&s, &info, size);
    } else if (rc != -1 || !memchr(err, '\0', sizeof err) || !strstr(err, path) ||
               !strstr(err, "offset ") || size_of(path) != (long)size) {
        abort(); /* a refusal names the file and the offset, and changes nothing */
    }
    store_state_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > (1u << 20))
        return 0;
    replay_input(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed)
        abort();
    memcpy(fixed, data, size);
    if (fix_checksums(fixed, size))
        replay_input(fixed, size);
    free(fixed);
    return 0;
}
