/*
 * zinx-demo-client: talks to zinx-demo-server with plain sockets and the
 * library's pure frame functions, zinx_pack() and zinx_unpack(), the way
 * a client written without this library would (the library's own client
 * API is in <zinx/client.h>).
 *
 * How to run (from the build directory), with the server started first:
 *
 *     ./bin/zinx-demo-server 127.0.0.1 8999
 *     ./bin/zinx-demo-client 127.0.0.1 8999
 *
 * Usage: zinx-demo-client HOST PORT [FORMAT], FORMAT tlv (default) or
 * ltv_le, matching the server's.
 *
 * It sends three messages with ID 1 and different payloads, then
 * half-closes the connection (shutdown SHUT_WR: "I have nothing more to
 * send"). The server still handles the three messages, flushes every
 * reply and then closes; the client prints each reply (ID, length,
 * payload) until that close, then exits 0. Against zinx-demo-server it
 * receives 7 replies: the welcome (ID 2), then "ping" and the echo (ID 1)
 * for each message.
 *
 * Every wait (connect, send, receive) gives up after 5 seconds with an
 * error and exit status 1, so a missing or stuck server never hangs it.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* getaddrinfo */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zinx.h>

#define PROG "zinx-demo-client"
#define TIMEOUT_MS 5000
#define MSG_PING 1
#define MAX_PAYLOAD 60000u
#define BUF_SIZE 65536

typedef struct client {
    int fd;
    zinx_packet_format_t format;
    uint8_t buf[BUF_SIZE]; /* received bytes not decoded yet */
    size_t len;
    unsigned replies;
} client_t;

static const char *const payloads[] = {"hello", "how are you?", "bye"};

/* Waits for events on fd; returns 0, or -1 after printing why not. */
static int wait_for(int fd, short events, const char *what)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int n = poll(&pfd, 1, TIMEOUT_MS);
        if (n > 0)
            return 0;
        if (n == 0) {
            fprintf(stderr, PROG ": timed out after %d s %s\n",
                    TIMEOUT_MS / 1000, what);
            return -1;
        }
        if (errno != EINTR) {
            perror(PROG ": poll");
            return -1;
        }
    }
}

/* Connects without blocking longer than the timeout. */
static int try_connect(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        goto fail;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS || wait_for(fd, POLLOUT, "connecting") < 0)
        goto fail;
    int err = 0;
    socklen_t err_len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
        goto fail;
    if (err == 0)
        return fd;
    errno = err;
fail:
    close(fd);
    return -1;
}

static int open_connection(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list;
    int rc = getaddrinfo(host, port, &hints, &list);

    if (rc != 0) {
        fprintf(stderr, PROG ": %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (const struct addrinfo *ai = list; ai != NULL && fd < 0;
         ai = ai->ai_next)
        fd = try_connect(ai);
    if (fd < 0)
        fprintf(stderr, PROG ": cannot connect to %s:%s: %s\n", host, port,
                strerror(errno));
    freeaddrinfo(list);
    return fd;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_for(fd, POLLOUT, "sending") < 0)
                return -1;
        } else if (n < 0 && errno != EINTR) {
            perror(PROG ": send");
            return -1;
        }
    }
    return 0;
}

/* Packs the three messages into one buffer and sends it. */
static int send_messages(const client_t *c)
{
    uint8_t out[256];
    size_t used = 0;

    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        uint32_t len = (uint32_t)strlen(payloads[i]);
        long n = zinx_pack(c->format, MAX_PAYLOAD, MSG_PING, payloads[i], len,
                           out + used, sizeof out - used);
        if (n < 0) {
            fprintf(stderr, PROG ": pack: %s\n", zinx_strerror((int)n));
            return -1;
        }
        used += (size_t)n;
        printf("sent     id=%u len=%u payload=\"%s\"\n", MSG_PING, len,
               payloads[i]);
    }
    return write_all(c->fd, out, used);
}

static void print_reply(const zinx_msg_t *m)
{
    printf("received id=%u len=%u payload=\"", m->id, m->len);
    for (uint32_t i = 0; i < m->len; i++) {
        uint8_t b = m->data[i];
        if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\')
            putchar(b);
        else
            printf("\\x%02x", b);
    }
    printf("\"\n");
}

/* Prints every complete frame in the buffer and keeps the partial tail. */
static int decode_replies(client_t *c)
{
    size_t off = 0;

    for (;;) {
        zinx_msg_t m;
        long n =
            zinx_unpack(c->format, MAX_PAYLOAD, c->buf + off, c->len - off, &m);
        if (n == ZINX_EAGAIN)
            break;
        if (n < 0) {
            fprintf(stderr, PROG ": bad frame from server: %s\n",
                    zinx_strerror((int)n));
            return -1;
        }
        print_reply(&m);
        c->replies++;
        off += (size_t)n;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return 0;
}

/* Reads replies until the server closes the connection. */
static int receive_replies(client_t *c)
{
    for (;;) {
        if (wait_for(c->fd, POLLIN, "waiting for a reply") < 0)
            return -1;
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            perror(PROG ": recv");
            return -1;
        }
        c->len += (size_t)n;
        if (decode_replies(c) < 0)
            return -1;
    }
    if (c->len > 0) {
        fprintf(stderr, PROG ": server closed inside a frame (%zu bytes)\n",
                c->len);
        return -1;
    }
    return 0;
}

static int talk(client_t *c)
{
    if (send_messages(c) < 0)
        return -1;
    /* Half-close: the server answers what it got, then closes. */
    if (shutdown(c->fd, SHUT_WR) < 0) {
        perror(PROG ": shutdown");
        return -1;
    }
    if (receive_replies(c) < 0)
        return -1;
    printf("server closed the connection after %u replies\n", c->replies);
    return 0;
}

int main(int argc, char **argv)
{
    static client_t c;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: " PROG " HOST PORT [tlv|ltv_le]\n");
        return 2;
    }
    c.format = ZINX_FORMAT_TLV;
    if (argc == 4 && zinx_packet_format_parse(argv[3], &c.format) < 0) {
        fprintf(stderr, PROG ": bad format '%s' (tlv or ltv_le)\n", argv[3]);
        return 2;
    }
    c.fd = open_connection(argv[1], argv[2]);
    if (c.fd < 0)
        return 1;
    int rc = talk(&c);
    close(c.fd);
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}
