/*
 * tests/unit/test_proto_text.c: UTF-8 as MQTT restricts it, topic name and filter syntax,
 * shared subscription filters, and the names of packet types and reason codes.
 */
#include "proto/mqtt.h"
#include "tests/unit/test.h"

#define U(lit) (const uint8_t *)(lit), sizeof(lit) - 1

TEST(utf8_valid_sequences)
{
    ASSERT(proto_utf8_valid(U("")));
    ASSERT(proto_utf8_valid(U("plain ascii text that is longer than eight bytes")));
    ASSERT(proto_utf8_valid(U("\x7F")));
    ASSERT(proto_utf8_valid(U("\xC2\x80")));             /* U+0080 */
    ASSERT(proto_utf8_valid(U("\xDF\xBF")));             /* U+07FF */
    ASSERT(proto_utf8_valid(U("\xE0\xA0\x80")));         /* U+0800 */
    ASSERT(proto_utf8_valid(U("\xED\x9F\xBF")));         /* U+D7FF */
    ASSERT(proto_utf8_valid(U("\xEE\x80\x80")));         /* U+E000 */
    ASSERT(proto_utf8_valid(U("\xEF\xBF\xBF")));         /* U+FFFF */
    ASSERT(proto_utf8_valid(U("\xF0\x90\x80\x80")));     /* U+10000 */
    ASSERT(proto_utf8_valid(U("\xF4\x8F\xBF\xBF")));     /* U+10FFFF */
    ASSERT(proto_utf8_valid(U("abcdefg\xC3\xA9hijklmnop\xF0\x9F\x98\x80qrstuvwxyz")));
}

TEST(utf8_invalid_sequences)
{
    ASSERT(!proto_utf8_valid(U("\x00")));
    ASSERT(!proto_utf8_valid(U("abc\x00")));
    ASSERT(!proto_utf8_valid(U("abcdefgh\x00ijklmnop"))); /* NUL inside the 8-byte fast path */
    ASSERT(!proto_utf8_valid(U("abcdefghijklmno\x00")));
    ASSERT(!proto_utf8_valid(U("\x80")));                 /* lone continuation */
    ASSERT(!proto_utf8_valid(U("\xBF")));
    ASSERT(!proto_utf8_valid(U("\xC0\x80")));             /* overlong U+0000 */
    ASSERT(!proto_utf8_valid(U("\xC1\xBF")));             /* overlong */
    ASSERT(!proto_utf8_valid(U("\xE0\x80\x80")));         /* overlong 3-byte */
    ASSERT(!proto_utf8_valid(U("\xE0\x9F\xBF")));
    ASSERT(!proto_utf8_valid(U("\xF0\x80\x80\x80")));     /* overlong 4-byte */
    ASSERT(!proto_utf8_valid(U("\xF0\x8F\xBF\xBF")));
    ASSERT(!proto_utf8_valid(U("\xED\xA0\x80")));         /* U+D800 */
    ASSERT(!proto_utf8_valid(U("\xED\xBF\xBF")));         /* U+DFFF */
    ASSERT(!proto_utf8_valid(U("\xED\xA0\x80\xED\xB0\x80"))); /* CESU-8 pair */
    ASSERT(!proto_utf8_valid(U("\xF4\x90\x80\x80")));     /* U+110000 */
    ASSERT(!proto_utf8_valid(U("\xF5\x80\x80\x80")));
    ASSERT(!proto_utf8_valid(U("\xF8\x88\x80\x80\x80")));
    ASSERT(!proto_utf8_valid(U("\xFE")));
    ASSERT(!proto_utf8_valid(U("\xFF")));
    ASSERT(!proto_utf8_valid(U("\xC3")));                 /* truncated */
    ASSERT(!proto_utf8_valid(U("\xE2\x82")));
    ASSERT(!proto_utf8_valid(U("\xF0\x9F\x98")));
    ASSERT(!proto_utf8_valid(U("\xC3\x28")));             /* bad continuation */
    ASSERT(!proto_utf8_valid(U("\xE2\x28\xA1")));
    ASSERT(!proto_utf8_valid(U("\xE2\x82\x28")));
    ASSERT(!proto_utf8_valid(U("\xF0\x9F\x28\x80")));
    ASSERT(!proto_utf8_valid(U("\xF0\x9F\x98\x28")));
    /* the length is respected: a valid prefix of invalid bytes */
    ASSERT(proto_utf8_valid((const uint8_t *)"ab\xFF", 2));
}

TEST(utf8_every_two_byte_lead)
{
    int valid = 0;
    for (unsigned a = 0x80; a < 0x100; a++) {
        for (unsigned b = 0; b < 0x100; b++) {
            uint8_t s[2] = {(uint8_t)a, (uint8_t)b};
            bool want = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
            if (proto_utf8_valid(s, 2) != want)
                TEST_FAIL_("%02x %02x", a, b);
            valid += want;
        }
    }
    ASSERT_EQ(valid, 30 * 64);
}

TEST(utf8_every_three_byte_code_point)
{
    /* encode every code point U+0800..U+FFFF; only the surrogates are refused */
    int refused = 0;
    for (unsigned cp = 0x800; cp <= 0xFFFF; cp++) {
        uint8_t s[3] = {(uint8_t)(0xE0 | (cp >> 12)), (uint8_t)(0x80 | ((cp >> 6) & 0x3F)),
                        (uint8_t)(0x80 | (cp & 0x3F))};
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        if (proto_utf8_valid(s, 3) == surrogate)
            TEST_FAIL_("U+%04X", cp);
        refused += surrogate;
    }
    ASSERT_EQ(refused, 0x800);
}

TEST(topic_names)
{
    ASSERT(proto_topic_name_valid(U("a")));
    ASSERT(proto_topic_name_valid(U("/")));
    ASSERT(proto_topic_name_valid(U("a/b/c")));
    ASSERT(proto_topic_name_valid(U("//")));
    ASSERT(proto_topic_name_valid(U("$SYS/broker")));
    ASSERT(proto_topic_name_valid(U(" spaced topic ")));
    ASSERT(proto_topic_name_valid(U("sensors/\xC3\xBC/temp")));
    ASSERT(!proto_topic_name_valid(U("")));
    ASSERT(!proto_topic_name_valid(U("+")));
    ASSERT(!proto_topic_name_valid(U("#")));
    ASSERT(!proto_topic_name_valid(U("a/+/b")));
    ASSERT(!proto_topic_name_valid(U("a/#")));
    ASSERT(!proto_topic_name_valid(U("a+b")));
    ASSERT(!proto_topic_name_valid(U("a\x00")));
    ASSERT(!proto_topic_name_valid(U("a\xED\xA0\x80")));
}

TEST(topic_filters)
{
    static const char *good[] = {"a",   "#",     "+",   "/",     "+/+",   "a/#",  "a/+/b",
                                 "/#",  "+/#",   "//",  "a//b",  "$SYS/#", "+/a/+", "a/b/c/d/#"};
    static const char *bad[] = {"",    "a#",  "#a",   "a/#/b", "a+",  "+a",  "a/b+",
                                "##",  "++",  "#/",   "a/+b/c", "a/#/", "+#", "a/\xC0\x80"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!proto_topic_filter_valid((const uint8_t *)good[i], strlen(good[i])))
            TEST_FAIL_("refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (proto_topic_filter_valid((const uint8_t *)bad[i], strlen(bad[i])))
            TEST_FAIL_("accepted %s", bad[i]);
    ASSERT(!proto_topic_filter_valid(U("a\x00")));
    ASSERT(proto_topic_filter_valid((const uint8_t *)"a/#/b", 3)); /* "a/#" */
}

TEST(shared_filters)
{
    mqtt_str_t g = {0}, f = {0};
    ASSERT_EQ(proto_shared_filter(U("$share/grp/a/b"), &g, &f), 1);
    ASSERT_EQ(g.len, 3);
    ASSERT_MEM_EQ(g.p, "grp", 3);
    ASSERT_EQ(f.len, 3);
    ASSERT_MEM_EQ(f.p, "a/b", 3);
    ASSERT_EQ(proto_shared_filter(U("$share/g/#"), &g, &f), 1);
    ASSERT_EQ(f.len, 1);
    ASSERT_EQ(proto_shared_filter(U("$share/g//"), NULL, NULL), 1);
    ASSERT_EQ(proto_shared_filter(U("a/b"), &g, &f), 0);
    ASSERT_EQ(proto_shared_filter(U("$share"), NULL, NULL), 0);
    ASSERT_EQ(proto_shared_filter(U("$shared/g/a"), NULL, NULL), 0);
    ASSERT_EQ(proto_shared_filter(U("$SHARE/g/a"), NULL, NULL), 0);
    ASSERT_EQ(proto_shared_filter(U("$share/"), NULL, NULL), -1);
    ASSERT_EQ(proto_shared_filter(U("$share/g"), NULL, NULL), -1);
    ASSERT_EQ(proto_shared_filter(U("$share/g/"), NULL, NULL), -1);
    ASSERT_EQ(proto_shared_filter(U("$share//a"), NULL, NULL), -1);
    ASSERT_EQ(proto_shared_filter(U("$share/+/a"), NULL, NULL), -1);
    ASSERT_EQ(proto_shared_filter(U("$share/g#/a"), NULL, NULL), -1);
    ASSERT_EQ(proto_shared_filter(U("$share/g/a#"), NULL, NULL), -1);
    ASSERT_EQ(proto_shared_filter(U("$share/\xFF/a"), NULL, NULL), -1);
}

TEST(type_names)
{
    ASSERT_STR_EQ(proto_type_name(MQTT_CONNECT), "CONNECT");
    ASSERT_STR_EQ(proto_type_name(MQTT_CONNACK), "CONNACK");
    ASSERT_STR_EQ(proto_type_name(MQTT_PUBLISH), "PUBLISH");
    ASSERT_STR_EQ(proto_type_name(MQTT_PUBACK), "PUBACK");
    ASSERT_STR_EQ(proto_type_name(MQTT_PUBREC), "PUBREC");
    ASSERT_STR_EQ(proto_type_name(MQTT_PUBREL), "PUBREL");
    ASSERT_STR_EQ(proto_type_name(MQTT_PUBCOMP), "PUBCOMP");
    ASSERT_STR_EQ(proto_type_name(MQTT_SUBSCRIBE), "SUBSCRIBE");
    ASSERT_STR_EQ(proto_type_name(MQTT_SUBACK), "SUBACK");
    ASSERT_STR_EQ(proto_type_name(MQTT_UNSUBSCRIBE), "UNSUBSCRIBE");
    ASSERT_STR_EQ(proto_type_name(MQTT_UNSUBACK), "UNSUBACK");
    ASSERT_STR_EQ(proto_type_name(MQTT_PINGREQ), "PINGREQ");
    ASSERT_STR_EQ(proto_type_name(MQTT_PINGRESP), "PINGRESP");
    ASSERT_STR_EQ(proto_type_name(MQTT_DISCONNECT), "DISCONNECT");
    ASSERT_STR_EQ(proto_type_name(MQTT_AUTH), "AUTH");
    ASSERT_STR_EQ(proto_type_name((mqtt_type_t)0), "UNKNOWN");
    ASSERT_STR_EQ(proto_type_name((mqtt_type_t)16), "UNKNOWN");
}

TEST(reason_code_names)
{
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_SUCCESS), "Success");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_GRANTED_QOS1), "Granted QoS 1");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_DISCONNECT_WITH_WILL), "Disconnect with Will Message");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_CONTINUE_AUTHENTICATION), "Continue authentication");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_MALFORMED), "Malformed Packet");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_PROTOCOL_ERROR), "Protocol Error");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_UNSUPPORTED_VERSION), "Unsupported Protocol Version");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_CLIENT_ID_NOT_VALID), "Client Identifier not valid");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_BAD_USER_OR_PASSWORD), "Bad User Name or Password");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_NOT_AUTHORIZED), "Not authorized");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_TOPIC_FILTER_INVALID), "Topic Filter invalid");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_TOPIC_NAME_INVALID), "Topic Name invalid");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_PACKET_TOO_LARGE), "Packet too large");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_SHARED_SUBS_NOT_SUPPORTED),
                  "Shared Subscriptions not supported");
    ASSERT_STR_EQ(proto_rc_name(MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED),
                  "Wildcard Subscriptions not supported");
    ASSERT_STR_EQ(proto_rc_name((mqtt_rc_t)0x03), "Unknown reason code");
    ASSERT_STR_EQ(proto_rc_name((mqtt_rc_t)0xA3), "Unknown reason code");
    ASSERT_STR_EQ(proto_rc_name((mqtt_rc_t)0x1234), "Unknown reason code");
    /* every code of the enumeration has a name */
    static const uint8_t all[] = {0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80,
                                  0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                                  0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x91, 0x92,
                                  0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B,
                                  0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
    for (size_t i = 0; i < sizeof all; i++)
        ASSERT(strcmp(proto_rc_name((mqtt_rc_t)all[i]), "Unknown reason code") != 0);
}

TEST(connack_codes_for_v311)
{
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_SUCCESS), MQTT311_CONNACK_ACCEPTED);
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_UNSUPPORTED_VERSION), MQTT311_CONNACK_BAD_VERSION);
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_CLIENT_ID_NOT_VALID), MQTT311_CONNACK_ID_REJECTED);
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_SERVER_UNAVAILABLE), MQTT311_CONNACK_UNAVAILABLE);
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_SERVER_BUSY), MQTT311_CONNACK_UNAVAILABLE);
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_BAD_USER_OR_PASSWORD),
              MQTT311_CONNACK_BAD_CREDENTIALS);
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_NOT_AUTHORIZED), MQTT311_CONNACK_NOT_AUTHORIZED);
    ASSERT_EQ(proto_connack_v311_code(MQTT_RC_BANNED), MQTT311_CONNACK_NOT_AUTHORIZED);
}

int main(void)
{
    RUN(utf8_valid_sequences);
    RUN(utf8_invalid_sequences);
    RUN(utf8_every_two_byte_lead);
    RUN(utf8_every_three_byte_code_point);
    RUN(topic_names);
    RUN(topic_filters);
    RUN(shared_filters);
    RUN(type_names);
    RUN(reason_code_names);
    RUN(connack_codes_for_v311);
    return test_summary();
}
