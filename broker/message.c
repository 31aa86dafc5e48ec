/*
 * broker/message.c: immutable, reference-counted application messages.
 *
 * A message is one allocation: the struct, then the topic, payload and the properties that are
 * forwarded unchanged (payload format, content type, response topic, correlation data, user
 * properties). Every subscriber and every pending write shares it; the last reference frees it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/core.h"

uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define PASS_THROUGH                                                                       \
    (MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) | MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) |      \
     MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) | MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) | \
     MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY))

static size_t props_extra(const mqtt_props_t *p)
{
    size_t n = (size_t)p->content_type.len + p->response_topic.len + p->correlation_data.len;
    for (uint32_t i = 0; i < p->n_user; i++)
        n += (size_t)p->user[i].name.len + p->user[i].value.len;
    return n + p->n_user * sizeof(mqtt_user_prop_t);
}

static mqtt_str_t copy_str(uint8_t **at, mqtt_str_t s)
{
    mqtt_str_t r = {*at, s.len};
    if (s.len)
        memcpy(*at, s.p, s.len);
    *at += s.len;
    return r;
}

msg_t *msg_new(const char *topic, size_t topic_len, const uint8_t *payload, size_t payload_len,
               uint8_t qos, bool retain, const mqtt_props_t *props, uint64_t now)
{
    size_t extra = props ? props_extra(props) : 0;
    size_t size = sizeof(msg_t) + extra + topic_len + 1 + payload_len;
    msg_t *m = malloc(size);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    atomic_init(&m->refs, 1);
    m->qos = qos;
    m->retain = retain;
    m->topic_len = (uint16_t)topic_len;
    /* user property array first: it needs pointer alignment */
    uint8_t *at = (uint8_t *)(m + 1);
    if (props) {
        mqtt_user_prop_t *user = (mqtt_user_prop_t *)at;
        at += props->n_user * sizeof *user;
        m->props.present = props->present & PASS_THROUGH;
        m->props.payload_format = props->payload_format;
        m->props.content_type = copy_str(&at, props->content_type);
        m->props.response_topic = copy_str(&at, props->response_topic);
        m->props.correlation_data = copy_str(&at, props->correlation_data);
        for (uint32_t i = 0; i < props->n_user; i++) {
            user[i].name = copy_str(&at, props->user[i].name);
            user[i].value = copy_str(&at, props->user[i].value);
        }
        m->props.n_user = props->n_user;
        m->props.user = props->n_user ? user : NULL;
        if ((props->present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY)))
            m->expire_at = now + (uint64_t)props->message_expiry * 1000u;
    }
    memcpy(at, topic, topic_len);
    at[topic_len] = 0;
    m->topic = (const char *)at;
    at += topic_len + 1;
    if (payload_len)
        memcpy(at, payload, payload_len);
    m->payload = at;
    m->payload_len = (uint32_t)payload_len;
    return m;
}

void msg_unref(msg_t *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

uint32_t msg_expiry_left(const msg_t *m, uint64_t now)
{
    if (!m->expire_at)
        return 0;
    if (now >= m->expire_at)
        return 1;
    uint64_t left = (m->expire_at - now + 999) / 1000;
    return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}
