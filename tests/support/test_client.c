/*
 * Blocking loopback client for the server tests (see test_client.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "test_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_fixture.h"
#include "test_frame.h"

/* The deadline timeout_ms from now (a negative timeout has passed). */
static uint64_t deadline_in(int timeout_ms)
{
    return tf_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
}

/*
 * Waits until fd is ready for events or the deadline passes. Returns 0
 * when ready (including error and hang-up states, which the following
 * call reports), -ETIMEDOUT, or a negative errno.
 */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, tf_ms_left(deadline));

        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int tc_connect_opts(int port, const tc_opts_t *o)
{
    int type = SOCK_STREAM | SOCK_CLOEXEC;

    if (o != NULL && o->nonblock)
        type |= SOCK_NONBLOCK;
    int fd = socket(AF_INET, type, 0);
    if (fd < 0)
        return -errno;
    if (o != NULL && o->rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Requests go out in pieces; Nagle plus delayed ACKs would add 40 ms
       stalls that look like server latency. */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
         errno != EINPROGRESS)) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int tc_connect(int port)
{
    return tc_connect_opts(port, NULL);
}

int tc_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int tc_local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        return -errno;
    return ntohs(sa.sin_port);
}

int tc_send_raw(int fd, const void *buf, size_t len, int timeout_ms)
{
    const uint8_t *p = buf;
    uint64_t deadline = deadline_in(timeout_ms);

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int tc_send_frame(int fd, zinx_packet_format_t fmt, uint32_t id,
                  const void *data, uint32_t len, int timeout_ms)
{
    uint8_t hdr[8];

    frame_header_encode(fmt, id, len, hdr);
    /* One write for small frames keeps each frame in one segment. */
    if (len <= 1024) {
        uint8_t buf[8 + 1024];
        size_t n = frame_encode(fmt, id, data, len, buf);
        return tc_send_raw(fd, buf, n, timeout_ms);
    }
    int rc = tc_send_raw(fd, hdr, sizeof(hdr), timeout_ms);
    if (rc == 0)
        rc = tc_send_raw(fd, data, len, timeout_ms);
    return rc;
}

int tc_send_header(int fd, zinx_packet_format_t fmt, uint32_t id, uint32_t len,
                   int timeout_ms)
{
    uint8_t hdr[8];

    frame_header_encode(fmt, id, len, hdr);
    return tc_send_raw(fd, hdr, sizeof(hdr), timeout_ms);
}

/* tc_recv_some() against a deadline. */
static ssize_t recv_some_until(int fd, void *buf, size_t cap, uint64_t deadline)
{
    for (;;) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);

        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

ssize_t tc_recv_some(int fd, void *buf, size_t cap, int timeout_ms)
{
    return recv_some_until(fd, buf, cap, deadline_in(timeout_ms));
}

static int recv_until(int fd, uint8_t *p, size_t len, uint64_t deadline)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = recv_some_until(fd, p + got, len - got, deadline);

        if (n == 0)
            return got == 0 ? TC_EOF : -EPROTO;
        if (n < 0)
            return (int)n;
        got += (size_t)n;
    }
    return 0;
}

int tc_recv_raw(int fd, void *buf, size_t len, int timeout_ms)
{
    return recv_until(fd, buf, len, deadline_in(timeout_ms));
}

int tc_recv_frame(int fd, zinx_packet_format_t fmt, uint32_t *id, void *buf,
                  size_t cap, uint32_t *len, int timeout_ms)
{
    uint64_t deadline = deadline_in(timeout_ms);
    uint8_t hdr[8];
    int rc = recv_until(fd, hdr, sizeof(hdr), deadline);

    if (rc != 0)
        return rc;
    frame_header_decode(fmt, hdr, id, len);
    if (*len > cap)
        return -EMSGSIZE;
    rc = recv_until(fd, buf, *len, deadline);
    return rc == TC_EOF ? -EPROTO : rc;
}

int tc_expect_eof(int fd, int timeout_ms)
{
    char c;
    ssize_t n = tc_recv_some(fd, &c, 1, timeout_ms);

    if (n == 0 || n == -ECONNRESET)
        return 0;
    return n > 0 ? -EPROTO : (int)n;
}

int tc_wait_closed(int fd, int timeout_ms, size_t *discarded)
{
    uint64_t deadline = deadline_in(timeout_ms);
    uint8_t buf[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = recv_some_until(fd, buf, sizeof(buf), deadline)) > 0)
        total += (size_t)n;
    if (discarded != NULL)
        *discarded = total;
    return (int)n;
}

bool tc_peer_closed_now(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

int tc_roundtrip(int fd, zinx_packet_format_t fmt, uint32_t id,
                 const void *data, uint32_t len, uint32_t *rid, void *buf,
                 size_t cap, uint32_t *rlen, int timeout_ms)
{
    int rc = tc_send_frame(fd, fmt, id, data, len, timeout_ms);

    if (rc != 0)
        return rc;
    return tc_recv_frame(fd, fmt, rid, buf, cap, rlen, timeout_ms);
}

int tc_echo_call(int fd, zinx_packet_format_t fmt, const void *data,
                 uint32_t len, int timeout_ms)
{
    uint8_t buf[4096];
    uint32_t id, rlen;

    if (len > sizeof(buf))
        return -EINVAL;
    int rc = tc_send_frame(fd, fmt, TC_ECHO_ID, data, len, timeout_ms);
    if (rc != 0)
        return rc;
    do { /* heartbeats of a server that sends them may come first */
        rc = tc_recv_frame(fd, fmt, &id, buf, sizeof(buf), &rlen, timeout_ms);
    } while (rc == 0 && id == TC_HEARTBEAT_ID);
    if (rc == TC_EOF || rc == -EPROTO)
        return -EPIPE;
    if (rc != 0)
        return rc;
    if (id != TC_ECHO_ID || rlen != len || memcmp(buf, data, len) != 0)
        return -EBADMSG;
    return 0;
}

uint32_t tc_rand(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9e3779b9u;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* One step of tc_exchange's writer: returns 0, or a negative errno. */
static int write_some(int fd, const uint8_t *out, size_t out_len, size_t *sent,
                      size_t max_chunk, uint32_t *seed)
{
    size_t want = out_len - *sent;

    if (max_chunk > 0) {
        size_t piece = 1 + tc_rand(seed) % max_chunk;
        if (piece < want)
            want = piece;
    }
    ssize_t n = send(fd, out + *sent, want, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
        *sent += (size_t)n;
        return 0;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return -errno;
    return 0;
}

/* One step of tc_exchange's reader: 0, TC_EOF/-EPROTO, or -errno. */
static int read_some(int fd, uint8_t *in, size_t in_len, size_t *got)
{
    ssize_t n = recv(fd, in + *got, in_len - *got, MSG_DONTWAIT);

    if (n > 0) {
        *got += (size_t)n;
        return 0;
    }
    if (n == 0)
        return *got == 0 ? TC_EOF : -EPROTO;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return -errno;
    return 0;
}

int tc_exchange(int fd, const void *out, size_t out_len, void *in,
                size_t in_len, size_t max_chunk, uint32_t *seed, int timeout_ms)
{
    uint64_t deadline = deadline_in(timeout_ms);
    size_t sent = 0, got = 0;
    uint32_t dummy = 1;

    if (seed == NULL)
        seed = &dummy;
    while (sent < out_len || got < in_len) {
        struct pollfd p = {.fd = fd, .events = 0};
        if (sent < out_len)
            p.events |= POLLOUT;
        if (got < in_len)
            p.events |= POLLIN;
        int n = poll(&p, 1, tf_ms_left(deadline));
        if (n == 0)
            return -ETIMEDOUT;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        int rc = 0;
        if (sent < out_len && (p.revents & (POLLOUT | POLLERR | POLLHUP)))
            rc = write_some(fd, out, out_len, &sent, max_chunk, seed);
        if (rc == 0 && got < in_len &&
            (p.revents & (POLLIN | POLLERR | POLLHUP)))
            rc = read_some(fd, in, in_len, &got);
        if (rc != 0)
            return rc;
        if (p.revents & POLLERR && got >= in_len && sent < out_len)
            return -EPIPE;
    }
    return 0;
}

int tc_shutdown_wr(int fd)
{
    return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}

void tc_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

void tc_close_rst(int fd)
{
    if (fd < 0)
        return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}
