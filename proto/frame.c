/*
 * proto/frame.c: the fixed header and the variable byte integer. Framing decides how many bytes
 * make one packet before any of it is decoded or allocated, so the size limit is applied here.
 */
#include "codec.h"

bool proto__rd_varint(rd_t *r, uint32_t *v)
{
    uint32_t val = 0;
    for (unsigned i = 0; i < 4; i++) {
        uint8_t b;
        if (!rd_u8(r, &b))
            return false;
        val |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = val;
            return true;
        }
    }
    return false;
}

size_t proto__varint_size(uint32_t v)
{
    if (v < 128u)
        return 1;
    if (v < 16384u)
        return 2;
    if (v < 2097152u)
        return 3;
    return 4;
}

void proto__wr_varint(wr_t *w, uint32_t v)
{
    if (v > PROTO_MAX_REMAINING) {
        w->bad = true;
        return;
    }
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        wr_u8(w, v ? (uint8_t)(b | 0x80) : b);
    } while (v);
}

int proto_frame(const uint8_t *buf, size_t len, uint32_t max_packet, size_t *hdr_len,
                uint32_t *rem_len)
{
    uint32_t val = 0;
    for (size_t i = 0; i < 4; i++) {
        if (1 + i >= len)
            return PROTO_FRAME_NEED_MORE;
        uint8_t b = buf[1 + i];
        val |= (uint32_t)(b & 0x7F) << (7 * i);
        /*
         * The whole length (at most 4 bytes) is read before the size is judged, so a malformed
         * length is reported as such; nothing is allocated either way, since the caller holds at
         * most these 5 header bytes until this function says how large the packet is.
         */
        if (!(b & 0x80)) {
            if (max_packet && (uint64_t)val + i + 2 > max_packet)
                return -MQTT_RC_PACKET_TOO_LARGE;
            *hdr_len = i + 2;
            *rem_len = val;
            return 0;
        }
    }
    return -MQTT_RC_MALFORMED;
}
