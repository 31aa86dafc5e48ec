#!/usr/bin/python3
"""tests/fuzz/gen_corpus.py: writes the seed corpora of proto_stream, conn_state, config and
http_response under tests/fuzz/corpus/ (the committed seeds come from here; rerun it after changing
it). MQTT packets are built with tests/integration/mqttraw.py, which is independent of the C codec.

Usage: /usr/bin/python3 tests/fuzz/gen_corpus.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import mqttraw as m  # noqa: E402

ROOT = os.path.join(HERE, "..", "..")


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- server-to-client packets mqttraw does not build ------------------------------------------

def connack(rc=0, sp=False, properties=None, version=5):
    body = bytes([1 if sp else 0, rc])
    if version == 5:
        body += m.props(properties)
    return m.packet(m.CONNACK, 0, body)


def suback(pid, codes, properties=None, version=5, ptype=m.SUBACK):
    body = m.u16(pid)
    if version == 5:
        body += m.props(properties)
    return m.packet(ptype, 0, body + bytes(codes))


def auth(rc=0x18, properties=None):
    return m.packet(m.AUTH, 0, bytes([rc]) + m.props(properties))


# ---- proto_stream: [mode][seed hi][seed lo] + stream ------------------------------------------
# mode: bit 0 client role, bits 1-2 version (0: 3.1, 1: 3.1.1, 2: 5), bit 3 before CONNECT,
# bits 4-5 max packet (0, 64, 1024, 65536), bit 6 small chunks.

def mode(client=False, version=5, fresh=False, maxp=0, small=False):
    v = {3: 0, 4: 1, 5: 2}[version]
    return bytes([(1 if client else 0) | v << 1 | (8 if fresh else 0) | maxp << 4 |
                  (0x40 if small else 0), 0x12, 0x34])


def proto_stream():
    v5props = [(m.PAYLOAD_FORMAT, 1), (m.MESSAGE_EXPIRY, 60), (m.CONTENT_TYPE, "text/plain"),
               (m.RESPONSE_TOPIC, "r/t"), (m.CORRELATION_DATA, b"\x01\x02"),
               (m.TOPIC_ALIAS, 3), (m.USER_PROPERTY, ("k", "v")), (m.USER_PROPERTY, ("k", "w"))]
    will = dict(topic="will/t", payload=b"bye", qos=1, retain=True,
                properties=[(m.WILL_DELAY, 5), (m.MESSAGE_EXPIRY, 10), (m.CONTENT_TYPE, "x")])
    cprops = [(m.SESSION_EXPIRY, 300), (m.RECEIVE_MAXIMUM, 10), (m.MAXIMUM_PACKET_SIZE, 65536),
              (m.TOPIC_ALIAS_MAXIMUM, 5), (m.REQUEST_PROBLEM_INFO, 1),
              (m.REQUEST_RESPONSE_INFO, 1), (m.AUTH_METHOD, "ace"), (m.AUTH_DATA, b"\xa1\x01"),
              (m.USER_PROPERTY, ("a", "b"))]
    write("proto_stream", "v5_connect_full", mode(fresh=True) + m.connect(
        "c1", 5, False, 30, cprops, will, "user", b"pw") + m.pingreq() + m.disconnect())
    write("proto_stream", "v311_connect_will", mode(version=4, fresh=True) + m.connect(
        "c2", 4, True, 60, None, dict(topic="w", payload=b"x", qos=2), "u", b"p") +
        m.publish("a/b", b"hi", 1, pid=1, version=4) + m.disconnect(version=4))
    write("proto_stream", "v31_connect", mode(version=3, fresh=True) + m.connect(
        "c3", 3, True, 10) + m.subscribe(1, [("a/+", 1)], version=3) + m.pingreq())
    write("proto_stream", "v5_publish_props", mode() + m.publish("s/t", b"payload", 1, pid=7,
                                                                properties=v5props))
    write("proto_stream", "v5_publish_alias", mode() + m.publish("", b"x", 0,
                                                                 properties=[(m.TOPIC_ALIAS, 1)]))
    write("proto_stream", "v5_qos2_flow", mode(small=True) + m.publish("q/2", b"x", 2, pid=9) +
          m.pubrel(9) + m.pubrec(10, 0x10, [(m.REASON_STRING, "no subs")]) + m.pubcomp(11, 0x92) +
          m.puback(12, 0x97, [(m.USER_PROPERTY, ("x", "y"))]))
    write("proto_stream", "v5_subscribe", mode() + m.subscribe(
        3, [("a/#", 0x2e), ("$share/g/x/+", 1), ("+/b", 2)],
        [(m.SUBSCRIPTION_ID, 268435455), (m.USER_PROPERTY, ("u", "v"))]) +
        m.unsubscribe(4, ["a/#", "$share/g/x/+"], [(m.USER_PROPERTY, ("u", "v"))]))
    write("proto_stream", "v311_subscribe", mode(version=4) + m.subscribe(
        5, [("a/b", 0), ("c/#", 2)], version=4) + m.unsubscribe(6, ["a/b"], version=4))
    write("proto_stream", "v5_disconnect_auth", mode() + m.disconnect(0x04, [
        (m.SESSION_EXPIRY, 0), (m.REASON_STRING, "bye"), (m.SERVER_REFERENCE, "other")]) +
        auth(0x19, [(m.AUTH_METHOD, "ace"), (m.AUTH_DATA, b"tok")]))
    write("proto_stream", "v5_maxpacket", mode(maxp=1) + m.publish("big", b"x" * 100, 0) +
          m.pingreq())
    write("proto_stream", "client_v5", mode(client=True, fresh=True) + connack(0, True, [
        (m.SESSION_EXPIRY, 10), (m.RECEIVE_MAXIMUM, 20), (m.MAXIMUM_QOS, 1),
        (m.RETAIN_AVAILABLE, 0), (m.MAXIMUM_PACKET_SIZE, 1000), (m.ASSIGNED_CLIENT_ID, "auto-1"),
        (m.TOPIC_ALIAS_MAXIMUM, 10), (m.REASON_STRING, "ok"), (m.WILDCARD_SUB_AVAILABLE, 1),
        (m.SUB_ID_AVAILABLE, 1), (m.SHARED_SUB_AVAILABLE, 0), (m.SERVER_KEEP_ALIVE, 30),
        (m.RESPONSE_INFO, "ri"), (m.AUTH_METHOD, "ace")]) +
        m.publish("t", b"x", 1, pid=2, properties=[(m.SUBSCRIPTION_ID, 1),
                                                    (m.SUBSCRIPTION_ID, 2)]) +
        suback(3, [0, 1, 2, 0x80, 0x97]) + suback(4, [0, 0x11], ptype=m.UNSUBACK) +
        m.packet(m.PINGRESP, 0, b"") + m.disconnect(0x8e))
    write("proto_stream", "client_v311", mode(client=True, version=4, fresh=True) +
          connack(0, False, version=4) + suback(1, [0, 0x80], version=4) +
          suback(2, [], version=4, ptype=m.UNSUBACK) + m.publish("x", b"", 2, pid=3, version=4))
    write("proto_stream", "bad_remaining_length", mode() + b"\x30\xff\xff\xff\xff\x01")
    write("proto_stream", "wrong_direction", mode() + connack() + suback(1, [0]))
    write("proto_stream", "bad_utf8", mode() + m.publish(b"a/\xc0\xaf", b"", 0) +
          m.publish(b"a\x00b", b"", 0))


# ---- conn_state: records [op][len][bytes] -------------------------------------------------------
# op & 3: connection slot; (op >> 2) & 3: 0/1 data, 2 peer closes, 3 tick (len = seconds).

def rec(slot, data):
    out = b""
    for i in range(0, max(len(data), 1), 255):
        chunk = data[i:i + 255]
        out += bytes([slot, len(chunk)]) + chunk
    return out


def hangup(slot):
    return bytes([8 | slot, 0])


def tick(seconds):
    return bytes([12, seconds])


def conn_state():
    sub = rec(0, m.connect("sub", 5, True, 60) + m.subscribe(1, [("a/#", 2), ("b/+", 1)]))
    write("conn_state", "pub_sub_qos", sub + rec(1, m.connect("pub", 5)) +
          rec(1, m.publish("a/x", b"0", 0) + m.publish("a/y", b"1", 1, pid=1) +
              m.publish("b/z", b"2", 2, pid=2) + m.pubrel(2)) +
          rec(0, m.puback(1) + m.pubrec(2) + m.pubcomp(2)) + rec(1, m.disconnect()))
    write("conn_state", "v311_flow", rec(0, m.connect("s4", 4, True) +
                                         m.subscribe(1, [("t/#", 1)], version=4)) +
          rec(1, m.connect("p4", 4) + m.publish("t/1", b"x", 1, pid=5, version=4)) +
          rec(0, m.puback(1, version=4) + m.unsubscribe(2, ["t/#"], version=4) + m.pingreq()))
    write("conn_state", "v31_flow", rec(0, m.connect("s3", 3, True) +
                                        m.subscribe(1, [("t", 0)], version=3) +
                                        m.publish("t", b"x", 0, version=3)))
    write("conn_state", "takeover", rec(0, m.connect("same", 5, False, 60,
                                                     [(m.SESSION_EXPIRY, 100)])) +
          rec(0, m.subscribe(1, [("x", 1)])) + rec(1, m.connect("same", 5, False)) +
          rec(2, m.connect("other", 4) + m.publish("x", b"q", 1, pid=1, version=4)))
    write("conn_state", "will_delay", rec(0, m.connect("w", 5, True, 60, [
        (m.SESSION_EXPIRY, 10)], dict(topic="will", payload=b"gone", qos=1, retain=True,
                                      properties=[(m.WILL_DELAY, 2)]))) +
          rec(1, m.connect("ws", 5) + m.subscribe(1, [("will", 1)])) + hangup(0) + tick(3) +
          tick(20) + rec(2, m.connect("late", 5) + m.subscribe(1, [("#", 0)])))
    write("conn_state", "retained", rec(0, m.connect("r", 5) +
                                        m.publish("ret/a", b"keep", 1, True, pid=1) +
                                        m.publish("ret/b", b"", 0, True)) +
          rec(1, m.connect("rs", 5) + m.subscribe(1, [("ret/+", 0x21)])))
    write("conn_state", "alias", rec(0, m.connect("al", 5, True, 60, [(m.TOPIC_ALIAS_MAXIMUM, 4)]) +
                                     m.subscribe(1, [("al/#", 0)]) +
                                     m.publish("al/1", b"a", 0, properties=[(m.TOPIC_ALIAS, 1)]) +
                                     m.publish("", b"b", 0, properties=[(m.TOPIC_ALIAS, 1)])))
    write("conn_state", "qos2_reuse", rec(0, m.connect("q2", 5) +
                                          m.publish("q", b"1", 2, pid=7) +
                                          m.publish("q", b"2", 2, pid=7, dup=True) +
                                          m.pubrel(7) + m.pubrel(7) + m.pubrel(8)))
    write("conn_state", "keepalive", rec(0, m.connect("ka", 5, True, 1)) + tick(2) + tick(5))
    write("conn_state", "connect_timeout", rec(0, b"\x10") + tick(10))
    write("conn_state", "persistent", rec(0, m.connect("ps", 4, False) +
                                          m.subscribe(1, [("p/#", 2)], version=4)) + hangup(0) +
          rec(1, m.connect("pp", 4) + m.publish("p/1", b"x", 2, pid=3, version=4) +
              m.pubrel(3, version=4)) + rec(0, m.connect("ps", 4, False)))
    write("conn_state", "limits", rec(0, m.connect("lim", 5) + b"".join(
        m.subscribe(i + 1, [("l/%d" % i, 1)]) for i in range(8)) +
        m.publish("l/0", b"x", 1, pid=1)) + rec(1, m.connect("lp", 5) + b"".join(
            m.publish("l/0", b"%d" % i, 1, pid=i + 1) for i in range(10))))
    write("conn_state", "hostile", rec(0, m.connect("h", 5) + m.connect("h", 5)) +
          rec(1, m.publish("x", b"", 0)) + rec(2, b"\x30\xff\xff\xff\xff\x01"))
    write("conn_state", "auth_packet", rec(0, m.connect("au", 5, True, 60,
                                                        [(m.AUTH_METHOD, "ace")])) +
          rec(0, auth(0x18, [(m.AUTH_METHOD, "ace"), (m.AUTH_DATA, b"x")])))


# ---- config ------------------------------------------------------------------------------------

def config():
    with open(os.path.join(ROOT, "etc", "acemq.conf"), "rb") as f:
        write("config", "etc_acemq_conf", f.read())
    write("config", "listeners", b"per_listener_settings true\nlistener 1883 127.0.0.1\n"
          b"allow_anonymous true\nmax_connections 10\nmount_point m/\nlistener 8883\n"
          b"certfile /nonexistent/c.pem\nkeyfile /nonexistent/k.pem\nrequire_certificate true\n"
          b"listener 9001\nprotocol websockets\nmax_qos 1\nmax_topic_alias 0\n")
    write("config", "limits", b"max_packet_size 65536\nmessage_size_limit 1000\n"
          b"max_inflight_messages 20\nmax_inflight_bytes 0\nmax_queued_messages 1000\n"
          b"max_queued_bytes 1000000\nconnect_timeout 10\nmax_keepalive 600\nmax_topic_levels 16\n"
          b"max_topic_length 1024\nmax_subscriptions 100\nmemory_limit 1073741824\n"
          b"max_handshakes 100\nrate_limit_messages 100\nrate_limit_bytes 1000000\n"
          b"max_qos2_pending 10\nmax_properties_size 4096\nglobal_max_connections 1000\n")
    write("config", "logging", b"log_dest stderr\nlog_dest file /tmp/x.log\nlog_dest syslog\n"
          b"log_type all\nlog_type none\nlog_type information\nlog_facility 5\n"
          b"log_timestamp true\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n"
          b"connection_messages false\n")
    write("config", "ace", b"ace_audience broker\nace_issuer as /nonexistent/as.key\n"
          b"ace_as_hint coaps://as.example\nace_cnonce true\nace_clock_skew 30\n"
          b"ace_max_token_size 4096\nace_public_topic pub/# pub\nace_public_topic s/+ sub\n"
          b"ace_scope_map admin # pubsub\nace_profile_id 3\n")
    write("config", "persistence", b"persistence true\npersistence_location /var/lib/acemq/\n"
          b"persistence_file a.db\nautosave_interval 60\nfsync always\n"
          b"persistent_client_expiration 2d\n")
    write("config", "mosquitto_refused", b"connection bridge\naddress 1.2.3.4\n")
    write("config", "bad_values", b"port 0\nmax_packet_size -1\nworkers x\n\tlistener   1883\r\n")


# ---- http_response: [seed] + response -----------------------------------------------------------

def http(status, body, ctype="application/json", mode="length", extra=b""):
    head = b"HTTP/1.1 %d X\r\n" % status
    if ctype:
        head += b"Content-Type: " + ctype.encode() + b"\r\n"
    head += extra
    if mode == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    if mode == "chunked":
        out = head + b"Transfer-Encoding: chunked\r\n\r\n"
        for i in range(0, len(body), 7):
            c = body[i:i + 7]
            out += b"%x\r\n" % len(c) + c + b"\r\n"
        return out + b"0\r\n\r\n"
    return head + b"Connection: close\r\n\r\n" + body


def http_response():
    active = (b'{"active":true,"iss":"as","sub":"dev1","aud":"broker","exp":4102444800,'
              b'"iat":1700000000,"scope":"publish_a/b subscribe_c/#","cti":"AQID",'
              b'"cnf":{"jwk":{"kty":"EC","crv":"P-256",'
              b'"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",'
              b'"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}}')
    aif = b'{"active":true,"aud":["x","broker"],"scope":[["a/+",["pub","sub"]]],"exi":60}'
    write("http_response", "active_length", b"\x01" + http(200, active))
    write("http_response", "active_chunked", b"\x02" + http(200, aif, mode="chunked"))
    write("http_response", "active_eof", b"\x03" + http(200, aif, "application/ace+json",
                                                         mode="eof"))
    write("http_response", "inactive", b"\x04" + http(200, b'{"active":false}'))
    write("http_response", "unauthorized", b"\x05" + http(401, b'{"error":"invalid_client"}',
                                                            extra=b"WWW-Authenticate: Basic\r\n"))
    write("http_response", "continue_then_ok", b"\x06" + b"HTTP/1.1 100 Continue\r\n\r\n" +
          http(200, b'{"active":true,"cnf":{"kid":"AQ"}}'))
    write("http_response", "cbor_refused", b"\x07" + http(200, b"\xa1\x0a\xf5",
                                                           "application/ace+cbor"))
    write("http_response", "bad_json", b"\x08" + http(200, b'{"active":tru'))


# ---- ws_frame: [mode][seed hi][seed lo] + frames --------------------------------------------
# mode: bit 0 require_mask, bits 1-2 max_frame (0, 125, 4096, 2^28), bits 3-4 output buffer size.

def ws(op, payload, fin=True, mask=b"\x11\x22\x33\x44"):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        hdr = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536:
        hdr = bytes([b0, (0x80 if mask else 0) | 126]) + n.to_bytes(2, "big")
    else:
        hdr = bytes([b0, (0x80 if mask else 0) | 127]) + n.to_bytes(8, "big")
    if not mask:
        return hdr + payload
    return hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def ws_frame():
    mqtt = m.connect("ws", 5) + m.subscribe(1, [("a/#", 1)])
    write("ws_frame", "binary_masked", bytes([1 | 4 | 16, 1, 2]) + ws(2, mqtt))
    write("ws_frame", "fragmented_ping", bytes([1 | 4 | 8, 3, 4]) + ws(2, mqtt[:5], False) +
          ws(9, b"hi") + ws(0, mqtt[5:], False) + ws(0, b"", True) + ws(10, b""))
    write("ws_frame", "len16", bytes([1 | 4 | 24, 5, 6]) + ws(2, b"x" * 300))
    write("ws_frame", "len64_truncated", bytes([1 | 6 | 24, 7, 8]) + ws(2, b"y" * 65536)[:1200])
    write("ws_frame", "close_code", bytes([1 | 4, 9, 9]) + ws(2, b"ab") + ws(8, b"\x03\xe8bye"))
    write("ws_frame", "unmasked_server", bytes([4 | 16, 1, 1]) + ws(2, mqtt, mask=b"") +
          ws(8, b"", mask=b""))
    write("ws_frame", "text_refused", bytes([1 | 4, 2, 2]) + ws(1, b"text"))
    write("ws_frame", "too_big", bytes([1 | 2, 3, 3]) + ws(2, b"z" * 200))


if __name__ == "__main__":
    ws_frame()
    proto_stream()
    conn_state()
    config()
    http_response()
