/*
 * zinx-decoder: Zinx's zinx_decoder example in C. A device server that
 * speaks the HTLV+CRC16 frame
 *
 *     [Head 1B][FuncCode 1B][Len 1B][Body Len B][CRC16/MODBUS 2B, low first]
 *
 * with a handler per function code (0x10, 0x13, 0x14, 0x15, 0x16), and a
 * second server that cuts Zinx's TLV frames with the generic length-field
 * decoder (Zinx's TLV preset), where an interceptor reads the message ID
 * and the payload out of each frame before routing, as Zinx's TLV decoder
 * interceptor does.
 *
 *     ./bin/zinx-decoder [PORT]     # the HTLV server (default 9090) and
 *                                   # the TLV one on PORT + 1, until ^C
 *     ./bin/zinx-decoder --selftest # both servers on free ports, then a
 *                                   # client sends frames whole, glued
 *                                   # together and cut in halves, prints
 *                                   # and checks every reply; exit 0 if
 *                                   # all are right
 *
 * The device protocol here (a water dispenser with IC cards) follows the
 * shape of Zinx's example; the bodies are made up for this program.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zinx.h>

#define PROG "zinx-decoder"

/* ---- the HTLV+CRC device server ------------------------------------------ */

/* Replies are HTLV frames too: the codec frames them (Head 0xA1). */
static void reply(zinx_request_t *req, const uint8_t *body, uint32_t len)
{
    zinx_conn_t *conn = zinx_request_conn(req);
    int rc = zinx_conn_send_msg(conn, zinx_request_msg_id(req), body, len);
    if (rc < 0 && rc != ZINX_ECLOSED)
        fprintf(stderr, PROG ": reply 0x%02x: %s\n", zinx_request_msg_id(req),
                zinx_strerror(rc));
}

/* 0x10, status report: acknowledged with the same body. */
static void on_status(zinx_request_t *req, void *udata)
{
    (void)udata;
    reply(req, zinx_request_data(req), zinx_request_data_len(req));
}

/* 0x13, card query: card number (body[0..4)), card state 0x01 (bound),
   days left, largest dose in mL, 5 reserved bytes. */
static void on_card_query(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint8_t body[14] = {0};
    if (zinx_request_data_len(req) >= 4)
        memcpy(body, zinx_request_data(req), 4);
    body[4] = 0x01;
    body[5] = 0x01; /* 365 days */
    body[6] = 0x6D;
    body[7] = 0x01; /* 500 mL */
    body[8] = 0xF4;
    reply(req, body, sizeof(body));
}

/* 0x14, start dispensing: acknowledged with a result byte 0x00 (ok). */
static void on_start(zinx_request_t *req, void *udata)
{
    (void)udata;
    const uint8_t ok = 0x00;
    reply(req, &ok, 1);
}

/* 0x15, stop dispensing: acknowledged with an empty body. */
static void on_stop(zinx_request_t *req, void *udata)
{
    (void)udata;
    reply(req, NULL, 0);
}

/* 0x16, usage record: acknowledged with the record's first two bytes
   (its sequence number). */
static void on_record(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint32_t n = zinx_request_data_len(req);
    reply(req, zinx_request_data(req), n < 2 ? n : 2);
}

static zinx_server_t *htlv_server(int port)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "htlv-device-server");
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = port;
    cfg.worker_pool_size = 2;
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return NULL;
    /* The same as "FrameDecoder": "htlv_crc" in zinx.json. */
    zinx_codec_t codec;
    zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &codec);
    zinx_server_set_codec(s, &codec);
    const struct {
        uint32_t func;
        zinx_handler_fn fn;
    } routes[] = {{0x10, on_status},
                  {0x13, on_card_query},
                  {0x14, on_start},
                  {0x15, on_stop},
                  {0x16, on_record}};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        zinx_router_t r = {.handle = routes[i].fn};
        zinx_server_add_router(s, routes[i].func, &r);
    }
    return s;
}

/* ---- TLV through the length-field decoder ---------------------------------
 */

/* Zinx's TLV preset: the length at offset 4, 4 bytes, big-endian; the
   whole frame (strip 0) comes out of the decoder with message ID 0. It
   must outlive the server: the codec reads it at every decode. */
static const zinx_length_field_t tlv_preset = {
    .order = ZINX_BIG_ENDIAN, .length = 4, .offset = 4};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Zinx's TLV decoder interceptor: reads the ID and the payload out of
   the frame and lets routing go on with them (no copy: the payload is a
   view into the frame). */
static void tlv_decoder(zinx_chain_t *chain, void *udata)
{
    (void)udata;
    zinx_msg_t m = zinx_chain_msg(chain);
    if (m.len < 8)
        return; /* not a TLV frame: dropped */
    zinx_msg_t tlv = {.id = be32(m.data), .len = m.len - 8, .data = m.data + 8};
    zinx_chain_proceed(chain, &tlv);
}

/* Answers "ack:" + the payload under the message's own ID (in
   PacketFormat, TLV). */
static void on_tlv_message(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint32_t n = zinx_request_data_len(req);
    uint8_t out[64];
    uint32_t len = n < sizeof(out) - 4 ? n : (uint32_t)sizeof(out) - 4;
    memcpy(out, "ack:", 4);
    memcpy(out + 4, zinx_request_data(req), len);
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req), out,
                       len + 4);
}

static zinx_server_t *tlv_server(int port)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "tlv-length-field-server");
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = port;
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return NULL;
    zinx_codec_t codec;
    zinx_codec_length_field(&tlv_preset, ZINX_FORMAT_TLV, &codec);
    zinx_server_set_codec(s, &codec);
    zinx_server_add_interceptor(s, tlv_decoder, NULL);
    /* Every ID the decoder finds gets the same answer. */
    zinx_router_t r = {.handle = on_tlv_message};
    zinx_server_set_fallback_router(s, &r);
    return s;
}

/* ---- the client part (--selftest) ---------------------------------------- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads exactly n bytes within 10 s. */
static int recv_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) != 1)
            return -1;
        ssize_t k = recv(fd, p, n, 0);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static size_t htlv_frame(uint8_t *out, uint8_t func, const uint8_t *body,
                         uint8_t len)
{
    out[0] = 0xA2; /* the device's Head */
    out[1] = func;
    out[2] = len;
    if (len > 0)
        memcpy(out + 3, body, len);
    uint16_t crc = zinx_crc16_modbus(out, 3u + len);
    out[3 + len] = (uint8_t)crc;
    out[4 + len] = (uint8_t)(crc >> 8);
    return 5u + len;
}

static void print_hex(const char *what, const uint8_t *p, size_t n)
{
    printf("%s", what);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

/* Reads one HTLV reply; checks Head 0xA1, the function code and the CRC. */
static int read_htlv_reply(int fd, uint8_t func, size_t want_len)
{
    uint8_t f[260];
    if (recv_all(fd, f, 3) != 0 || recv_all(fd, f + 3, (size_t)f[2] + 2) != 0)
        return -1;
    size_t n = (size_t)f[2] + 5;
    print_hex("  reply  ", f, n);
    uint16_t crc = zinx_crc16_modbus(f, n - 2);
    if (f[0] != ZINX_HTLV_REPLY_HEAD || f[1] != func || f[2] != want_len ||
        f[n - 2] != (uint8_t)crc || f[n - 1] != (uint8_t)(crc >> 8)) {
        fprintf(stderr, PROG ": bad reply to 0x%02x\n", func);
        return -1;
    }
    return 0;
}

static int htlv_client(int port)
{
    int fd = dial(port);
    if (fd < 0)
        return -1;
    const uint8_t status[14] = {0x68, 0x65, 0x74, 0, 0, 4, 0xD3};
    const uint8_t card[6] = {0x00, 0x00, 0x12, 0x34, 0x01, 0x00};
    const uint8_t start[1] = {0x01};
    const uint8_t record[16] = {0x00, 0x2A, 0x01, 0xF4};
    uint8_t buf[128];
    size_t n = 0, cut;
    printf("HTLV+CRC16 device frames, two glued together:\n");
    n += htlv_frame(buf + n, 0x10, status, sizeof(status));
    n += htlv_frame(buf + n, 0x13, card, sizeof(card));
    print_hex("  send   ", buf, n);
    int rc = send_all(fd, buf, n);
    rc = rc == 0 ? read_htlv_reply(fd, 0x10, sizeof(status)) : rc;
    rc = rc == 0 ? read_htlv_reply(fd, 0x13, 14) : rc;
    printf("one and a half frames, then the rest:\n");
    n = htlv_frame(buf, 0x14, start, sizeof(start));
    n += htlv_frame(buf + n, 0x15, NULL, 0);
    n += htlv_frame(buf + n, 0x16, record, sizeof(record));
    cut = n - 10;
    print_hex("  send   ", buf, cut);
    rc = rc == 0 ? send_all(fd, buf, cut) : rc;
    rc = rc == 0 ? read_htlv_reply(fd, 0x14, 1) : rc;
    rc = rc == 0 ? read_htlv_reply(fd, 0x15, 0) : rc;
    print_hex("  send   ", buf + cut, n - cut);
    rc = rc == 0 ? send_all(fd, buf + cut, n - cut) : rc;
    rc = rc == 0 ? read_htlv_reply(fd, 0x16, 2) : rc;
    close(fd);
    return rc;
}

static size_t tlv_frame(uint8_t *out, uint32_t id, const char *text)
{
    uint32_t len = (uint32_t)strlen(text);
    uint8_t h[8] = {(uint8_t)(id >> 24),  (uint8_t)(id >> 16),
                    (uint8_t)(id >> 8),   (uint8_t)id,
                    (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 8),  (uint8_t)len};
    memcpy(out, h, 8);
    memcpy(out + 8, text, len);
    return 8u + len;
}

static int read_tlv_reply(int fd, uint32_t id, const char *text)
{
    uint8_t f[128];
    if (recv_all(fd, f, 8) != 0 || be32(f + 4) > sizeof(f) - 8 ||
        recv_all(fd, f + 8, be32(f + 4)) != 0)
        return -1;
    uint32_t len = be32(f + 4);
    printf("  reply  id %u \"%.*s\"\n", be32(f), (int)len, (const char *)f + 8);
    if (be32(f) != id || len != strlen(text) + 4 ||
        memcmp(f + 12, text, strlen(text)) != 0) {
        fprintf(stderr, PROG ": bad TLV reply to %u\n", id);
        return -1;
    }
    return 0;
}

static int tlv_client(int port)
{
    int fd = dial(port);
    if (fd < 0)
        return -1;
    uint8_t buf[128];
    printf("TLV through the length-field decoder, glued then halved:\n");
    size_t n = tlv_frame(buf, 1, "hello");
    n += tlv_frame(buf + n, 2, "zinx");
    size_t cut = n + 6;
    n += tlv_frame(buf + n, 3, "decoder");
    int rc = send_all(fd, buf, cut);
    rc = rc == 0 ? read_tlv_reply(fd, 1, "hello") : rc;
    rc = rc == 0 ? read_tlv_reply(fd, 2, "zinx") : rc;
    rc = rc == 0 ? send_all(fd, buf + cut, n - cut) : rc;
    rc = rc == 0 ? read_tlv_reply(fd, 3, "decoder") : rc;
    close(fd);
    return rc;
}

/* ---- main ------------------------------------------------------------------
 */

int main(int argc, char **argv)
{
    int selftest = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    int port = selftest ? 0 : argc > 1 ? atoi(argv[1]) : 9090;
    zinx_server_t *hs = htlv_server(port);
    zinx_server_t *ts = tlv_server(port == 0 ? 0 : port + 1);
    if (hs == NULL || ts == NULL || zinx_server_start(hs) != 0 ||
        zinx_server_start(ts) != 0) {
        fprintf(stderr, PROG ": cannot start the servers\n");
        zinx_server_free(hs);
        zinx_server_free(ts);
        return 1;
    }
    int rc = 0;
    if (selftest) {
        rc = htlv_client(zinx_server_port(hs));
        rc = rc == 0 ? tlv_client(zinx_server_port(ts)) : rc;
        zinx_server_stats_t st;
        zinx_server_stats(hs, &st);
        printf("device server: %llu frames in, %llu bad frames\n",
               (unsigned long long)st.msgs_in,
               (unsigned long long)st.bad_frames);
        printf("%s\n", rc == 0 ? "selftest: ok" : "selftest: FAILED");
    } else {
        printf("HTLV+CRC16 on 127.0.0.1:%d, TLV (length field) on :%d\n",
               zinx_server_port(hs), zinx_server_port(ts));
        fflush(stdout);
        rc = zinx_server_serve(hs); /* until SIGINT/SIGTERM */
    }
    zinx_server_free(hs);
    zinx_server_free(ts);
    return rc == 0 ? 0 : 1;
}
