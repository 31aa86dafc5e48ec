/*
 * proto/names.c: English names of packet types and reason codes for log lines. The reason code
 * names are those of the MQTT 5.0 table (section 2.4).
 */
#include "codec.h"

const char *proto_type_name(mqtt_type_t type)
{
    static const char *const names[16] = {
        NULL,       "CONNECT", "CONNACK",     "PUBLISH", "PUBACK",      "PUBREC",
        "PUBREL",   "PUBCOMP", "SUBSCRIBE",   "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ",  "PINGRESP", "DISCONNECT", "AUTH",
    };
    if ((unsigned)type > 15 || !names[type])
        return "UNKNOWN";
    return names[type];
}

const char *proto_rc_name(mqtt_rc_t rc)
{
    static const char *const names[256] = {
        [0x00] = "Success",
        [0x01] = "Granted QoS 1",
        [0x02] = "Granted QoS 2",
        [0x04] = "Disconnect with Will Message",
        [0x10] = "No matching subscribers",
        [0x11] = "No subscription existed",
        [0x18] = "Continue authentication",
        [0x19] = "Re-authenticate",
        [0x80] = "Unspecified error",
        [0x81] = "Malformed Packet",
        [0x82] = "Protocol Error",
        [0x83] = "Implementation specific error",
        [0x84] = "Unsupported Protocol Version",
        [0x85] = "Client Identifier not valid",
        [0x86] = "Bad User Name or Password",
        [0x87] = "Not authorized",
        [0x88] = "Server unavailable",
        [0x89] = "Server busy",
        [0x8A] = "Banned",
        [0x8B] = "Server shutting down",
        [0x8C] = "Bad authentication method",
        [0x8D] = "Keep Alive timeout",
        [0x8E] = "Session taken over",
        [0x8F] = "Topic Filter invalid",
        [0x90] = "Topic Name invalid",
        [0x91] = "Packet Identifier in use",
        [0x92] = "Packet Identifier not found",
        [0x93] = "Receive Maximum exceeded",
        [0x94] = "Topic Alias invalid",
        [0x95] = "Packet too large",
        [0x96] = "Message rate too high",
        [0x97] = "Quota exceeded",
        [0x98] = "Administrative action",
        [0x99] = "Payload format invalid",
        [0x9A] = "Retain not supported",
        [0x9B] = "QoS not supported",
        [0x9C] = "Use another server",
        [0x9D] = "Server moved",
        [0x9E] = "Shared Subscriptions not supported",
        [0x9F] = "Connection rate exceeded",
        [0xA0] = "Maximum connect time",
        [0xA1] = "Subscription Identifiers not supported",
        [0xA2] = "Wildcard Subscriptions not supported",
    };
    if ((unsigned)rc > 255 || !names[rc])
        return "Unknown reason code";
    return names[rc];
}

uint8_t proto_connack_v311_code(mqtt_rc_t rc)
{
    switch (rc) {
    case MQTT_RC_SUCCESS:
        return MQTT311_CONNACK_ACCEPTED;
    case MQTT_RC_UNSUPPORTED_VERSION:
        return MQTT311_CONNACK_BAD_VERSION;
    case MQTT_RC_CLIENT_ID_NOT_VALID:
        return MQTT311_CONNACK_ID_REJECTED;
    case MQTT_RC_BAD_USER_OR_PASSWORD:
    case MQTT_RC_BAD_AUTH_METHOD:
        return MQTT311_CONNACK_BAD_CREDENTIALS;
    case MQTT_RC_NOT_AUTHORIZED:
    case MQTT_RC_BANNED:
        return MQTT311_CONNACK_NOT_AUTHORIZED;
    default:
        return MQTT311_CONNACK_UNAVAILABLE;
    }
}
