/* The cluster's wire format (see wire.h). */
#include <string.h>

#include "cluster/wire.h"
#include "zinx/error.h"

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

int zinx__wire_parse(zinx__wire_msg_t *m, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (p == NULL || len < ZINX__WIRE_HEADER || p[0] != ZINX__WIRE_VERSION)
        return ZINX_EPROTO;
    memset(m, 0, sizeof(*m));
    m->kind = p[1];
    m->flags = p[2];
    m->node = get32(p + 4);
    m->instance = get64(p + 8);
    m->value = get64(p + 16);
    m->msg_id = get32(p + 24);
    m->count = get32(p + 28);
    if (m->kind < ZINX__WIRE_HELLO || m->kind > ZINX__WIRE_KIND_MAX ||
        m->node == 0 || m->node > 0xffff)
        return ZINX_EPROTO;
    /* Divided, not multiplied: count * 8 cannot wrap this way. */
    size_t room = len - ZINX__WIRE_HEADER;
    if (m->count > room / 8)
        return ZINX_EPROTO;
    m->ids = p + ZINX__WIRE_HEADER;
    m->payload = m->ids + (size_t)m->count * 8;
    m->payload_len = room - (size_t)m->count * 8;
    return 0;
}

uint64_t zinx__wire_id(const zinx__wire_msg_t *m, uint32_t i)
{
    return get64(m->ids + (size_t)i * 8);
}

void zinx__wire_put_header(uint8_t *out, const zinx__wire_msg_t *m)
{
    out[0] = ZINX__WIRE_VERSION;
    out[1] = m->kind;
    out[2] = m->flags;
    out[3] = 0;
    put32(out + 4, m->node);
    put64(out + 8, m->instance);
    put64(out + 16, m->value);
    put32(out + 24, m->msg_id);
    put32(out + 28, m->count);
}

void zinx__wire_put_id(uint8_t *out, uint32_t i, uint64_t id)
{
    put64(out + ZINX__WIRE_HEADER + (size_t)i * 8, id);
}
