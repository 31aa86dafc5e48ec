"""Topic matching (+, #, $-topics), shared subscriptions, subscription options, (un)subscribe."""

import time

import pytest

from conftest import mosquitto_deviation, uid, assert_serves, props, PacketTypes, SubscribeOptions
import mqttraw as m

MATCH_TOPICS = ["a/b/c", "a/b", "a", "a//c", "/x", "a/b/c/d", "b/b/c"]
MATCH_TABLE = {
    "a/b/c": ["a/b/c"],
    "a/+/c": ["a/b/c", "a//c"],
    "a/#": ["a/b/c", "a/b", "a", "a//c", "a/b/c/d"],
    "a/b/#": ["a/b/c", "a/b", "a/b/c/d"],
    "+/b/c": ["a/b/c", "b/b/c"],
    "+": ["a"],
    "+/+": ["a/b", "/x"],
    "/+": ["/x"],
    "#": MATCH_TOPICS,
    "+/#": MATCH_TOPICS,
    "a/+": ["a/b"],
}


def test_wildcard_matching(broker, raws):
    base = uid("m")
    subs = {}
    for i, filt in enumerate(MATCH_TABLE):
        c = raws(broker, 5)
        c.connect(uid("m"))
        # Prefix every filter and topic with a unique level so other tests cannot interfere;
        # "#" and "+/#" become "<base>/#" and "<base>/+/#".
        assert c.subscribe([(base + "/" + filt, 0)]).codes == [0]
        subs[filt] = c
    pub = raws(broker, 5)
    pub.connect(uid("m"))
    for t in MATCH_TOPICS:
        pub.publish(base + "/" + t, t.encode())
    pub.send(m.pingreq())
    pub.recv_type(m.PINGRESP)
    for filt, c in subs.items():
        want = expected_matches(filt)
        got = [c.recv_type(m.PUBLISH).payload.decode() for _ in want]
        assert sorted(got) == sorted(want), filt
        c.recv_nothing(0.1)


def expected_matches(filt):
    """The topics of MATCH_TOPICS that "<base>/<filt>" matches under "<base>/"."""
    if filt == "+/#":    # "<base>/+/#" also matches "<base>/a" ("#" matches the parent)
        return MATCH_TOPICS
    return MATCH_TABLE[filt]


def test_wildcard_matching_paho(broker, clients):
    base = uid("m")
    subs = {}
    for i, filt in enumerate(MATCH_TABLE):
        c = clients(broker, protocol=4 if i % 2 else 5)
        assert c.subscribe(base + "/" + filt, 0) == [0]
        subs[filt] = c
    pub = clients(broker)
    for t in MATCH_TOPICS:
        pub.publish(base + "/" + t, t.encode(), qos=1)
    for filt, c in subs.items():
        want = expected_matches(filt)
        assert sorted(x.payload.decode() for x in c.get_n(len(want))) == sorted(want), filt
    time.sleep(0.2)
    assert all(c.messages.empty() for c in subs.values()), "a message matched a filter too many"


def test_dollar_topics_not_matched_by_leading_wildcards(broker, raws):
    t = "$" + uid("dollar") + "/x"
    wild = raws(broker, 5)
    wild.connect(uid("w"))
    wild.subscribe([("#", 0), ("+/x", 0)])
    explicit = raws(broker, 5)
    explicit.connect(uid("w"))
    explicit.subscribe([(t.split("/")[0] + "/#", 0)])
    plus = raws(broker, 5)
    plus.connect(uid("w"))
    plus.subscribe([(t.split("/")[0] + "/+", 0)])
    pub = raws(broker, 5)
    pub.connect(uid("w"))
    pub.publish(t, b"dollar")
    assert explicit.recv_type(m.PUBLISH).topic == t
    assert plus.recv_type(m.PUBLISH).topic == t
    normal = uid("plain") + "/x"
    pub.publish(normal, b"plain")
    # The wildcard subscriber gets the plain message (twice at most: two filters) and never $.
    got = wild.recv_type(m.PUBLISH)
    assert got.topic == normal
    while True:
        try:
            p = wild.recv(0.3)
        except TimeoutError:
            break
        assert p.type == m.PUBLISH and p.topic == normal, p


def test_dollar_topics_paho(broker, clients):
    t = "$" + uid("dollar") + "/x"
    wild = clients(broker)
    wild.subscribe("#", 0)
    wild.subscribe("+/x", 0)
    explicit = clients(broker, protocol=4)
    explicit.subscribe(t.split("/")[0] + "/#", 0)
    pub = clients(broker)
    pub.publish(t, b"dollar", qos=1)
    assert explicit.get().topic == t
    normal = uid("plain") + "/x"
    pub.publish(normal, b"plain", qos=1)
    # The plain message (once per filter at most), never the $ one.
    got = [wild.get()] + wild.drain(0.3)
    assert [x.topic for x in got] in ([normal], [normal, normal]), [x.topic for x in got]


def shared_group_run(b, clients, protocol, n_msgs=30):
    group = uid("g")
    topic = uid("sh")
    members = [clients(b, protocol=protocol) for _ in range(3)]
    for c in members:
        assert c.subscribe("$share/%s/%s/#" % (group, topic), 1) == [1]
    plain = clients(b, protocol=protocol)
    plain.subscribe(topic + "/#", 1)
    pub = clients(b, protocol=protocol)
    for i in range(n_msgs):
        pub.publish("%s/%d" % (topic, i % 3), b"%d" % i, qos=1)
    assert sorted(int(x.payload) for x in plain.get_n(n_msgs)) == list(range(n_msgs))
    per = [[] for _ in members]
    total = 0
    while total < n_msgs:
        progressed = False
        for k, c in enumerate(members):
            for msg in c.drain(0.05):
                per[k].append(int(msg.payload))
                total += 1
                progressed = True
        if not progressed:
            break
    for c in members:
        per[members.index(c)] += [int(x.payload) for x in c.drain(0.3)]
    everything = sorted(sum(per, []))
    assert everything == list(range(n_msgs)), per      # each exactly once
    assert all(len(p) > 0 for p in per), [len(p) for p in per]
    # Round robin: nobody is starved.
    assert min(len(p) for p in per) >= n_msgs // 6, [len(p) for p in per]
    if b.workers == 1:
        # One loop, and a publisher that waits for each PUBACK: the members take turns, so each
        # gets every third message (docs/architecture.md: one member per group, round robin).
        assert [len({x % 3 for x in p}) for p in per] == [1, 1, 1], per
        assert [len(p) for p in per] == [n_msgs // 3] * 3, per


@pytest.mark.parametrize("protocol", [4, 5])
def test_shared_subscription_round_robin(broker, clients, protocol):
    shared_group_run(broker, clients, protocol)


def test_shared_subscription_groups_independent(broker, clients):
    topic = uid("sh")
    g1 = [clients(broker) for _ in range(2)]
    g2 = clients(broker)
    for c in g1:
        c.subscribe("$share/one/%s" % topic, 1)
    g2.subscribe("$share/two/%s" % topic, 1)
    pub = clients(broker)
    for i in range(10):
        pub.publish(topic, b"%d" % i, qos=1)
    assert sorted(int(x.payload) for x in g2.get_n(10)) == list(range(10))
    got = []
    for c in g1:
        got += [int(x.payload) for x in c.drain(0.5)]
    assert sorted(got) == list(range(10))


def test_subscription_identifiers(broker, raws, clients):
    base = uid("sid")
    c = raws(broker, 5)
    ack = c.connect(uid("sid"))
    assert ack.prop(m.SUB_ID_AVAILABLE, 1) == 1
    c.send(m.subscribe(1, [(base + "/+", 0)], [(m.SUBSCRIPTION_ID, 5)]))
    c.recv_type(m.SUBACK)
    c.send(m.subscribe(2, [(base + "/b", 0)], [(m.SUBSCRIPTION_ID, 300)]))
    c.recv_type(m.SUBACK)
    c.send(m.subscribe(3, [(base + "/#", 0)]))            # no identifier
    c.recv_type(m.SUBACK)
    publish_for_sub_ids(broker, clients, base)
    copies = {}
    while True:
        try:
            p = c.recv(0.4)
        except TimeoutError:
            break
        copies.setdefault(p.payload, []).append(p.props_all(m.SUBSCRIPTION_ID))
    check_subscription_ids(copies)


def publish_for_sub_ids(b, clients, base):
    pub = clients(b)
    pub.publish(base + "/c", b"only-plus")
    pub.publish(base + "/c/d", b"only-hash")
    pub.publish(base + "/b", b"all")


def check_subscription_ids(copies):
    """copies: payload -> [identifiers of each copy] for subscriptions <base>/+ (5), <base>/b
    (300) and <base>/# (none): one copy with all identifiers, or one per subscription."""
    assert sorted(sum(copies[b"only-plus"], [])) == [5], copies
    assert sorted(sum(copies[b"only-hash"], [])) == [], copies
    assert sorted(sum(copies[b"all"], [])) == [5, 300], copies
    assert len(copies[b"all"]) in (1, 3), copies


def test_subscription_identifiers_paho(broker, clients):
    base = uid("sid")
    c = clients(broker)
    c.subscribe(base + "/+", 0, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=5))
    c.subscribe(base + "/b", 0, properties=props(PacketTypes.SUBSCRIBE,
                                                 SubscriptionIdentifier=300))
    c.subscribe(base + "/#", 0)
    publish_for_sub_ids(broker, clients, base)
    copies = {}
    for msg in c.get_n(3) + c.drain(0.4):
        ids = getattr(msg.properties, "SubscriptionIdentifier", [])
        copies.setdefault(msg.payload, []).append(ids)
    check_subscription_ids(copies)


def test_no_local_paho(broker, clients):
    topic = uid("nl")
    me = clients(broker)
    assert me.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True)) == [1]
    other = clients(broker, protocol=4)
    me.publish(topic, b"mine", qos=1)
    other.publish(topic, b"theirs", qos=1)
    assert me.get().payload == b"theirs"
    me.no_message(0.3)


def test_no_local(broker, raws):
    topic = uid("nl")
    me = raws(broker, 5)
    me.connect(uid("nl"))
    me.subscribe([(topic, 1 | 0x04)])
    other = raws(broker, 5)
    other.connect(uid("nl"))
    me.publish(topic, b"mine", qos=1, pid=1)
    assert me.recv_type(m.PUBACK).pid == 1
    other.publish(topic, b"theirs", qos=1, pid=1)
    other.recv_type(m.PUBACK)
    p = me.recv_type(m.PUBLISH)
    assert p.payload == b"theirs"
    me.send(m.puback(p.pid))
    me.recv_nothing(0.3)


def test_overlapping_subscriptions_max_qos(broker, raws, clients):
    base = uid("ov")
    c = raws(broker, 5)
    c.connect(uid("ov"))
    c.send(m.subscribe(1, [(base + "/#", 0)], [(m.SUBSCRIPTION_ID, 1)]))
    c.recv_type(m.SUBACK)
    c.send(m.subscribe(2, [(base + "/+", 1)], [(m.SUBSCRIPTION_ID, 2)]))
    c.recv_type(m.SUBACK)
    clients(broker).publish(base + "/x", b"both", qos=1)
    copies = []
    while True:
        try:
            p = c.recv(0.4)
        except TimeoutError:
            break
        assert p.type == m.PUBLISH
        copies.append((p.qos, sorted(p.props_all(m.SUBSCRIPTION_ID))))
        if p.qos:
            c.send(m.puback(p.pid))
    if len(copies) == 1:
        assert copies == [(1, [1, 2])]
    else:
        assert sorted(copies) == [(0, [1]), (1, [2])]


def test_overlapping_subscriptions_311(broker, clients):
    base = uid("ov")
    c = clients(broker, protocol=4)
    c.subscribe(base + "/#", 0)
    c.subscribe(base + "/+", 2)
    clients(broker, protocol=4).publish(base + "/x", b"both", qos=2)
    got = c.drain(0.5)
    assert got and max(x.qos for x in got) == 2 and len(got) <= 2


SHARE_DEV = mosquitto_deviation("accepts a $share filter without share name or filter")


@pytest.mark.parametrize("filt", ["a/#/b", "a+", "#/a", "a/b#", "a/+b", "",
                                  pytest.param("$share/g", marks=SHARE_DEV),
                                  pytest.param("$share//x", marks=SHARE_DEV), "$share/g+/x"])
def test_invalid_topic_filter(module_broker, raws, filt):
    c = raws(module_broker, 5)
    c.connect(uid("inv"))
    c.send(m.subscribe(1, [(filt, 0)]))
    try:
        p = c.recv(3)
    except m.Closed:
        p = None
    if p is not None and p.type == m.SUBACK:
        if filt.startswith("$share"):
            assert len(p.codes) == 1 and p.codes[0] >= 0x80, p
        else:
            assert p.codes == [0x8F], p
    elif p is not None:
        assert p.type == m.DISCONNECT and p.rc in (0x8F, 0x81, 0x82), p
        c.wait_closed(3)
    assert_serves(module_broker)


def test_invalid_topic_filter_311(module_broker, raws):
    c = raws(module_broker, 4)
    c.connect(uid("inv"))
    c.send(m.subscribe(1, [("a/#/b", 1)], version=4))
    try:
        p = c.recv(3)
        assert p.type == m.SUBACK and p.codes == [0x80], p
    except m.Closed:
        pass
    assert_serves(module_broker)


def test_unsubscribe(broker, raws, clients):
    topic = uid("uns")
    c = raws(broker, 5)
    c.connect(uid("uns"))
    c.subscribe([(topic, 1)])
    c.send(m.unsubscribe(7, [topic, topic + "/never"]))
    ack = c.recv_type(m.UNSUBACK)
    assert ack.pid == 7 and ack.codes == [0x00, 0x11]
    clients(broker).publish(topic, b"after", qos=1)
    c.recv_nothing(0.3)


def test_unsubscribe_311(broker, raws, clients):
    topic = uid("uns")
    c = raws(broker, 4)
    c.connect(uid("uns"))
    c.subscribe([(topic, 1)])
    c.send(m.unsubscribe(9, [topic, "not/subscribed"], version=4))
    ack = c.recv_type(m.UNSUBACK)
    assert ack.pid == 9 and ack.body == b"\x00\x09"
    clients(broker).publish(topic, b"after", qos=1)
    c.recv_nothing(0.3)


def test_resubscribe_replaces_qos(broker, raws, clients):
    topic = uid("resub")
    c = raws(broker, 5)
    c.connect(uid("resub"))
    assert c.subscribe([(topic, 2)], pid=1).codes == [2]
    assert c.subscribe([(topic, 0)], pid=2).codes == [0]
    clients(broker).publish(topic, b"x", qos=2)
    p = c.recv_type(m.PUBLISH)
    assert p.qos == 0
    c.recv_nothing(0.2)
