/*
 * proto/mqtt.h: MQTT 3.1 (level 3), 3.1.1 (level 4) and 5.0 (level 5) packets as plain data.
 *
 * Pure: bytes in, structs out, structs in, bytes out. No I/O, no logging, no globals.
 *
 * Ownership: a decoded packet points into the caller's frame buffer (strings, binary data, payload)
 * and owns only the arrays it had to allocate (user properties, subscribe/unsubscribe lists, ack
 * reason lists). The frame buffer must outlive the packet; proto_packet_free() releases the arrays.
 *
 * Errors: decoding returns an MQTT reason code as data (MQTT_RC_SUCCESS when the packet is valid,
 * otherwise the reason a server sends in its CONNACK/DISCONNECT: malformed, protocol error,
 * unsupported protocol version, topic name invalid, packet too large...). For MQTT 3.1.1 the caller
 * simply closes the connection (or sends the matching 3.1.1 CONNACK code for CONNECT).
 * The optional err_desc receives a static English sentence saying which rule was broken.
 */
#ifndef ACEMQ_PROTO_MQTT_H
#define ACEMQ_PROTO_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MQTT_V31 = 3, MQTT_V311 = 4, MQTT_V5 = 5 };

typedef enum {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15,
} mqtt_type_t;

/* MQTT 5 reason codes (MQTT 5.0 section 2.4). */
typedef enum {
    MQTT_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
    MQTT_RC_GRANTED_QOS1 = 0x01,
    MQTT_RC_GRANTED_QOS2 = 0x02,
    MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
    MQTT_RC_REAUTHENTICATE = 0x19,
    MQTT_RC_UNSPECIFIED = 0x80,
    MQTT_RC_MALFORMED = 0x81,
    MQTT_RC_PROTOCOL_ERROR = 0x82,
    MQTT_RC_IMPL_SPECIFIC = 0x83,
    MQTT_RC_UNSUPPORTED_VERSION = 0x84,
    MQTT_RC_CLIENT_ID_NOT_VALID = 0x85,
    MQTT_RC_BAD_USER_OR_PASSWORD = 0x86,
    MQTT_RC_NOT_AUTHORIZED = 0x87,
    MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    MQTT_RC_SERVER_BUSY = 0x89,
    MQTT_RC_BANNED = 0x8A,
    MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    MQTT_RC_BAD_AUTH_METHOD = 0x8C,
    MQTT_RC_KEEPALIVE_TIMEOUT = 0x8D,
    MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    MQTT_RC_PACKET_ID_IN_USE = 0x91,
    MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
    MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
    MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    MQTT_RC_PACKET_TOO_LARGE = 0x95,
    MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    MQTT_RC_QUOTA_EXCEEDED = 0x97,
    MQTT_RC_ADMIN_ACTION = 0x98,
    MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    MQTT_RC_SERVER_MOVED = 0x9D,
    MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
    MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    MQTT_RC_MAX_CONNECT_TIME = 0xA0,
    MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
    MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
} mqtt_rc_t;

/* MQTT 3.1.1 CONNACK return codes. */
enum {
    MQTT311_CONNACK_ACCEPTED = 0,
    MQTT311_CONNACK_BAD_VERSION = 1,
    MQTT311_CONNACK_ID_REJECTED = 2,
    MQTT311_CONNACK_UNAVAILABLE = 3,
    MQTT311_CONNACK_BAD_CREDENTIALS = 4,
    MQTT311_CONNACK_NOT_AUTHORIZED = 5,
};

/* MQTT 5 property identifiers. */
typedef enum {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,
    MQTT_PROP_CONTENT_TYPE = 0x03,
    MQTT_PROP_RESPONSE_TOPIC = 0x08,
    MQTT_PROP_CORRELATION_DATA = 0x09,
    MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
    MQTT_PROP_SESSION_EXPIRY = 0x11,
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    MQTT_PROP_AUTH_METHOD = 0x15,
    MQTT_PROP_AUTH_DATA = 0x16,
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
    MQTT_PROP_WILL_DELAY = 0x18,
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
    MQTT_PROP_RESPONSE_INFO = 0x1A,
    MQTT_PROP_SERVER_REFERENCE = 0x1C,
    MQTT_PROP_REASON_STRING = 0x1F,
    MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
    MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
    MQTT_PROP_TOPIC_ALIAS = 0x23,
    MQTT_PROP_MAXIMUM_QOS = 0x24,
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    MQTT_PROP_USER_PROPERTY = 0x26,
    MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
} mqtt_prop_id_t;

#define MQTT_PROP_BIT(id) (1ULL << (id))

/* A UTF-8 string or binary data: points into a frame buffer or into caller-owned memory. */
typedef struct {
    const uint8_t *p;
    uint16_t len;
} mqtt_str_t;

typedef struct {
    mqtt_str_t name;
    mqtt_str_t value;
} mqtt_user_prop_t;

/*
 * The property set of one packet (or of a CONNECT's will). A property is present when its bit
 * MQTT_PROP_BIT(id) is set in `present`; only then is its field meaningful. User properties and
 * subscription identifiers may repeat and are arrays (owned by the packet after decoding, by the
 * caller when encoding).
 */
typedef struct {
    uint64_t present;
    uint8_t payload_format;
    uint32_t message_expiry;
    mqtt_str_t content_type;
    mqtt_str_t response_topic;
    mqtt_str_t correlation_data;
    uint32_t session_expiry;
    mqtt_str_t assigned_client_id;
    uint16_t server_keep_alive;
    mqtt_str_t auth_method;
    mqtt_str_t auth_data;
    uint8_t request_problem_info;
    uint32_t will_delay;
    uint8_t request_response_info;
    mqtt_str_t response_info;
    mqtt_str_t server_reference;
    mqtt_str_t reason_string;
    uint16_t receive_maximum;
    uint16_t topic_alias_maximum;
    uint16_t topic_alias;
    uint8_t maximum_qos;
    uint8_t retain_available;
    uint32_t maximum_packet_size;
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;
    uint32_t n_sub_ids;
    const uint32_t *sub_ids; /* PUBLISH (server to client) may carry several; SUBSCRIBE one */
    uint32_t n_user;
    const mqtt_user_prop_t *user;
} mqtt_props_t;

/* Subscription options byte (MQTT 5 3.8.3.1; 3.1.1 uses the QoS bits only). */
#define MQTT_SUBOPT_QOS(o) ((o) & 0x03)
#define MQTT_SUBOPT_NO_LOCAL 0x04
#define MQTT_SUBOPT_RAP 0x08
#define MQTT_SUBOPT_RH(o) (((o) >> 4) & 0x03)

typedef struct {
    mqtt_str_t filter;
    uint8_t options;
} mqtt_sub_t;

typedef struct {
    mqtt_str_t protocol_name;
    uint8_t level; /* MQTT_V31 / MQTT_V311 / MQTT_V5 */
    bool clean;    /* Clean Session (3.1.1) or Clean Start (5) */
    bool will;
    uint8_t will_qos;
    bool will_retain;
    bool has_username;
    bool has_password;
    uint16_t keepalive;
    mqtt_props_t props;
    mqtt_str_t client_id;
    mqtt_props_t will_props;
    mqtt_str_t will_topic;
    const uint8_t *will_payload;
    uint16_t will_payload_len;
    mqtt_str_t username;
    mqtt_str_t password;
} mqtt_connect_t;

typedef struct {
    bool session_present;
    uint8_t rc; /* MQTT 5 reason code, or 3.1.1 return code */
    mqtt_props_t props;
} mqtt_connack_t;

typedef struct {
    uint8_t qos;
    bool dup;
    bool retain;
    mqtt_str_t topic; /* may be empty in MQTT 5 when a topic alias is used */
    uint16_t id;      /* QoS 1 and 2 only */
    mqtt_props_t props;
    const uint8_t *payload;
    uint32_t payload_len;
} mqtt_publish_t;

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
typedef struct {
    uint16_t id;
    uint8_t rc;
    mqtt_props_t props;
} mqtt_ack_t;

typedef struct {
    uint16_t id;
    mqtt_props_t props;
    uint32_t n;
    const mqtt_sub_t *subs;
} mqtt_subscribe_t;

typedef struct {
    uint16_t id;
    mqtt_props_t props;
    uint32_t n;
    const mqtt_str_t *filters;
} mqtt_unsubscribe_t;

/* SUBACK and UNSUBACK (UNSUBACK has no codes before MQTT 5). */
typedef struct {
    uint16_t id;
    mqtt_props_t props;
    uint32_t n;
    const uint8_t *rcs;
} mqtt_suback_t;

/* DISCONNECT and AUTH. */
typedef struct {
    uint8_t rc;
    mqtt_props_t props;
} mqtt_reason_t;

typedef struct {
    mqtt_type_t type;
    uint8_t flags; /* the low nibble of the fixed header, as received */
    union {
        mqtt_connect_t connect;
        mqtt_connack_t connack;
        mqtt_publish_t publish;
        mqtt_ack_t ack;
        mqtt_subscribe_t subscribe;
        mqtt_unsubscribe_t unsubscribe;
        mqtt_suback_t suback;
        mqtt_reason_t reason; /* DISCONNECT, AUTH */
    } u;
    void *owned; /* arrays allocated by the decoder; released by proto_packet_free() */
} mqtt_packet_t;

/* ---- Framing ---------------------------------------------------------------------------------- */

enum { PROTO_FRAME_NEED_MORE = 1 };

/*
 * Reads a fixed header at the start of buf. Returns 0 when the header is complete and sets
 * *hdr_len (2..5) and *rem_len; PROTO_FRAME_NEED_MORE when more bytes are needed to know the
 * length; or a negative value when the header is malformed (remaining length over 4 bytes, or
 * a non-minimal 5th byte) or the whole packet (hdr + rem) would exceed max_packet (0 = the
 * protocol maximum): -MQTT_RC_MALFORMED or -MQTT_RC_PACKET_TOO_LARGE. Nothing is allocated,
 * so a peer can never make the caller allocate for a packet it will refuse.
 */
int proto_frame(const uint8_t *buf, size_t len, uint32_t max_packet, size_t *hdr_len,
                uint32_t *rem_len);

/* ---- Decoding --------------------------------------------------------------------------------- */

typedef enum { PROTO_ROLE_SERVER, PROTO_ROLE_CLIENT } proto_role_t;

typedef struct {
    proto_role_t role; /* the side doing the decoding: a server accepts only client packets */
    uint8_t version;   /* negotiated level; 0 before CONNECT */
    bool connected;    /* a CONNECT was already accepted on this connection */
    /* Most MQTT 5 property bytes one packet may declare, all its property blocks (a CONNECT's
       and its will's) together; 0 = no limit beyond the packet size. The declared length is
       checked before the block is walked, so an oversized block costs no parsing. */
    uint32_t max_props;
} proto_ctx_t;

/*
 * Decodes one whole packet (frame = fixed header + remaining length bytes, as delimited by
 * proto_frame). Checks every malformed-packet and protocol-error rule that can be checked from
 * the packet alone and the context: reserved flags, QoS 3, packet direction, a CONNECT when
 * already connected or anything else before CONNECT, property types, duplicates and the packets
 * each property may appear in, UTF-8 validity, topic name and filter syntax, zero packet ids.
 * Property blocks declaring more than ctx->max_props bytes in total give MQTT_RC_PACKET_TOO_LARGE:
 * the client broke no rule of the spec, it sent more than this receiver takes, which is what
 * 0x95 says (the same code as for max_packet_size; CONNACK and DISCONNECT may both carry it).
 * A CONNECT is decoded whatever the context's version and sets pkt->u.connect.level.
 * Returns MQTT_RC_SUCCESS or the reason code; on failure pkt holds nothing to free.
 */
mqtt_rc_t proto_decode(const proto_ctx_t *ctx, const uint8_t *frame, size_t len,
                       mqtt_packet_t *pkt, const char **err_desc);

void proto_packet_free(mqtt_packet_t *pkt);

/* ---- Encoding --------------------------------------------------------------------------------- */

/*
 * Size of the whole encoded packet for this protocol version (properties are left out below
 * MQTT 5). Returns 0 when the packet cannot be encoded (remaining length over the maximum).
 */
size_t proto_encoded_size(const mqtt_packet_t *pkt, uint8_t version);

/* Encodes into out (cap bytes). Returns the number of bytes written, or 0 if cap is too small. */
size_t proto_encode(const mqtt_packet_t *pkt, uint8_t version, uint8_t *out, size_t cap);

/*
 * For PUBLISH only: encodes everything up to (not including) the payload, with a remaining length
 * that counts payload_len, so the payload can be written as a second buffer shared among
 * subscribers. Returns bytes written or 0 when cap is too small (64 + topic + properties is
 * always enough when the properties are small).
 */
size_t proto_encode_publish_head(const mqtt_packet_t *pkt, uint8_t version, uint8_t *out,
                                 size_t cap);

/* ---- Validity rules shared with the router and ace/ ------------------------------------------ */

/* Well-formed UTF-8 per MQTT: no U+0000, no surrogates, no overlong forms. */
bool proto_utf8_valid(const uint8_t *s, size_t len);

/* A topic name: non-empty, valid UTF-8, no '+' or '#'. */
bool proto_topic_name_valid(const uint8_t *s, size_t len);

/* A topic filter: non-empty, valid UTF-8, '+' alone in its level, '#' alone and last. */
bool proto_topic_filter_valid(const uint8_t *s, size_t len);

/* The name of a packet type ("CONNECT"...) and of a reason code ("Not authorized"...), for logs. */
const char *proto_type_name(mqtt_type_t type);
const char *proto_rc_name(mqtt_rc_t rc);

/* ---- Additions ------------------------------------------------------------------------------- */

/*
 * Notes on the functions above:
 * - proto_decode() always sets pkt->type and pkt->flags when the frame has a fixed header; for a
 *   refused CONNECT, pkt->u.connect.level is set as soon as it was read, so the server can answer
 *   in the client's version (0x84 / 3.1.1 code 1 for an unsupported level).
 * - The client role accepts a CONNACK only while ctx->connected is false; set it once the CONNACK
 *   was accepted. The client role does not require CONNACK before other packets.
 * - A ctx->version of 0 reads packets other than CONNECT as MQTT 3.1.1.
 * - The encoders write only the properties a packet type may carry (others in the set are left
 *   out); proto_encode() writes CONNECT's protocol name and level from `version`.
 */

/* Largest remaining length (4-byte variable byte integer). */
#define PROTO_MAX_REMAINING_LENGTH 268435455u

/*
 * Shared subscriptions: returns 1 when s is "$share/{group}/{filter}" with a valid group
 * (non-empty, no '+', '#' or '/') and a valid filter (group and filter, when not NULL, then
 * point into s); 0 when s does not start with "$share/";
 * -1 when it does but is not a valid shared filter.
 */
int proto_shared_filter(const uint8_t *s, size_t len, mqtt_str_t *group, mqtt_str_t *filter);

/* The MQTT 3.1/3.1.1 CONNACK return code closest to an MQTT 5 CONNACK reason code. */
uint8_t proto_connack_v311_code(mqtt_rc_t rc);

#endif
