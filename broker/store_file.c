/*
 * broker/store_file.c: reading a store file back, and writing snapshots.
 *
 * Recovery rules (docs/persistence.md):
 * - no file: an empty store;
 * - a header that is not ours (magic), a format version we do not read, or a damaged header:
 *   refused, with the file and offset;
 * - a record that is cut short or fails its checksum, with no valid record anywhere after it:
 *   a torn tail (the writer died in the middle of a write). It is cut and reported;
 * - a bad record followed by a valid one: damage in the middle of the log. Cutting there would
 *   silently lose acknowledged data, so the start is refused with the offset.
 * The file is read through a private read-only mapping; the state keeps its own copies.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/store_int.h"

/* Whether a valid record starts anywhere in [from, size). */
static bool valid_record_after(const uint8_t *data, size_t from, size_t size, size_t *at)
{
    for (size_t p = from; p + STORE_REC_OVERHEAD < size; p++) {
        uint8_t type;
        const uint8_t *payload;
        uint32_t plen;
        size_t total;
        if (data[p] == STORE_REC_MAGIC &&
            store_frame_check(data + p, size - p, &type, &payload, &plen, &total) == FRAME_OK) {
            *at = p;
            return true;
        }
    }
    return false;
}

static int check_header(const char *path, const uint8_t *data, size_t size, store_replay_t *info,
                        char *err, size_t cap)
{
    uint8_t want[STORE_HEADER_SIZE];
    store_header_make(want, STORE_FORMAT_VERSION);
    if (size < STORE_HEADER_SIZE) {
        /* a header being written when the process died: nothing after it was ever written */
        if (memcmp(data, want, size) == 0) {
            info->dropped_bytes = size;
            return 1;
        }
        snprintf(err, cap, "%s: offset 0: not an acemq store (%zu bytes of garbage)", path, size);
        return -1;
    }
    if (memcmp(data, store_file_magic, sizeof store_file_magic) != 0) {
        snprintf(err, cap, "%s: offset 0: not an acemq store (bad magic)", path);
        return -1;
    }
    uint32_t version = (uint32_t)data[8] | (uint32_t)data[9] << 8 | (uint32_t)data[10] << 16 |
                       (uint32_t)data[11] << 24;
    uint32_t crc = (uint32_t)data[12] | (uint32_t)data[13] << 8 | (uint32_t)data[14] << 16 |
                   (uint32_t)data[15] << 24;
    if (crc != store_crc32(0, data, 12)) {
        snprintf(err, cap, "%s: offset 8: damaged file header (checksum mismatch)", path);
        return -1;
    }
    if (version != STORE_FORMAT_VERSION) {
        snprintf(err, cap, "%s: offset 8: store format version %u, this acemqd reads version %u",
                 path, version, STORE_FORMAT_VERSION);
        return -1;
    }
    return 0;
}

static int replay_one(const char *path, store_state_t *s, const uint8_t *p, uint8_t type,
                      const uint8_t *payload, uint32_t plen, size_t off, char *err, size_t cap)
{
    (void)p;
    store_rec_t r;
    int rc = store_rec_decode(type, payload, plen, &r);
    if (rc == 0) {
        rc = store_state_apply(s, &r);
        msg_unref(r.msg); /* the state took its own reference */
    }
    if (rc == -EBADMSG)
        snprintf(err, cap, "%s: offset %zu: malformed %s record (valid checksum)", path, off,
                 store_rec_name(type));
    else if (rc < 0)
        snprintf(err, cap, "%s: offset %zu: out of memory replaying the store", path, off);
    return rc < 0 ? -1 : 0;
}

static int replay_records(const char *path, store_state_t *s, const uint8_t *data, size_t size,
                          store_replay_t *info, char *err, size_t cap)
{
    size_t off = STORE_HEADER_SIZE;
    while (off < size) {
        uint8_t type;
        const uint8_t *payload;
        uint32_t plen;
        size_t total, next;
        int fc = store_frame_check(data + off, size - off, &type, &payload, &plen, &total);
        if (fc != FRAME_OK) {
            if (valid_record_after(data, off + 1, size, &next)) {
                snprintf(err, cap,
                         "%s: offset %zu: damaged record (%s) followed by valid records (next "
                         "at offset %zu); refusing to drop them",
                         path, off, fc == FRAME_SHORT ? "bad length" : "bad checksum", next);
                return -1;
            }
            info->dropped_bytes = size - off;
            break;
        }
        if (replay_one(path, s, data + off, type, payload, plen, off, err, cap) < 0)
            return -1;
        info->records++;
        off += total;
    }
    info->valid_bytes = off;
    return 0;
}

static int cut(const char *path, uint64_t at, char *err, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)at) < 0 || fsync(fd) < 0) {
        snprintf(err, cap, "%s: cannot cut the torn tail at offset %llu: %s", path,
                 (unsigned long long)at, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int store_file_replay(const char *path, store_state_t *s, bool read_only, store_replay_t *info,
                      char *err, size_t cap)
{
    memset(info, 0, sizeof *info);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    info->file_bytes = size;
    if (size == 0) {
        close(fd);
        return 0;
    }
    const uint8_t *data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (data == MAP_FAILED) {
        snprintf(err, cap, "%s: cannot map: %s", path, strerror(errno));
        return -1;
    }
    int rc = check_header(path, data, size, info, err, cap);
    if (rc == 0)
        rc = replay_records(path, s, data, size, info, err, cap);
    else if (rc > 0)
        rc = 0; /* torn header: valid_bytes stays 0 */
    munmap((void *)data, size);
    if (rc < 0)
        return -1;
    store_state_sweep(s);
    if (info->dropped_bytes && !read_only)
        return cut(path, info->valid_bytes, err, cap);
    return 0;
}

/* ---- snapshots -------------------------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct {
    int fd;
    sbuf_t buf;
    uint64_t written;
} snapw_t;

static int snap_emit(void *arg, const store_rec_t *r)
{
    snapw_t *w = arg;
    int rc = store_rec_encode(&w->buf, r);
    if (rc == 0 && w->buf.len >= (1u << 20)) {
        rc = write_all(w->fd, w->buf.p, w->buf.len);
        w->written += w->buf.len;
        w->buf.len = 0;
    }
    return rc;
}

static int sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int store_file_write_snapshot(const char *path, store_state_t *s, uint64_t *size, char *err,
                              size_t cap)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snapw_t w = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (w.fd < 0) {
        snprintf(err, cap, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = sbuf_reserve(&w.buf, STORE_HEADER_SIZE);
    if (rc == 0) {
        store_header_make(w.buf.p, STORE_FORMAT_VERSION);
        w.buf.len = STORE_HEADER_SIZE;
        rc = store_state_snapshot(s, snap_emit, &w);
    }
    if (rc == 0 && w.buf.len)
        rc = write_all(w.fd, w.buf.p, w.buf.len);
    w.written += w.buf.len;
    sbuf_free(&w.buf);
    /* the new file must be complete on disk before its name replaces the old log */
    if (rc == 0 && fdatasync(w.fd) < 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = sync_dir(path);
    if (rc < 0) {
        snprintf(err, cap, "%s: cannot write a snapshot: %s", tmp, strerror(-rc));
        close(w.fd);
        unlink(tmp);
        return -1;
    }
    *size = w.written;
    return w.fd;
}
