"""The metrics listener from the tests' side: a broker started with one, /metrics fetched and parsed
with python3-prometheus-client's own parser, and lookups in the parsed samples."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import HOST, connectable, free_port, wait_until


def start(make_broker, *lines, sys_interval=0):
    """A broker with metrics on a free port; no $SYS by default (so retained counts are ours)."""
    for attempt in range(3):
        port = free_port()
        try:
            b = make_broker("metrics_listener %d 127.0.0.1" % port,
                            "sys_interval %d" % sys_interval, *lines)
            break
        except AssertionError as e:  # free_port() can hand the fixture's own port out again
            if attempt == 2 or "metrics_listener: cannot listen" not in str(e):
                raise
    b.metrics_url = metrics_url(port)
    return b


def metrics_url(port):
    """http://HOST:port, once the metrics listener there accepts connections (it is bound after
    the MQTT listeners)."""
    wait_until(lambda: connectable(port), what="the metrics listener")
    return "http://%s:%d" % (HOST, port)


def get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers, r.read().decode()


def scrape(b):
    """{(sample name, ((label, value), ...)): value} from a parsed /metrics of b.metrics_url."""
    status, headers, text = get(b.metrics_url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def series(samples, name, label):
    """{label value: value} of every series of a metric with one label."""
    return {dict(lab)[label]: v for (n, lab), v in samples.items() if n == name}
