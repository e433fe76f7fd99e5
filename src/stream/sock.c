/*
 * Socket streams: a connected stream socket, TCP or Unix domain, read
 * and written with the plain system calls. The owner's shared read
 * buffer is passed straight to read(), so bytes are never copied on the
 * way in.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stream/stream.h"

static zinx__sock_stream_t *sock_of(zinx__stream_t *s)
{
    return ZINX__CONTAINER_OF(s, zinx__sock_stream_t, base);
}

static void on_io(zinx__io_t *io, uint32_t events)
{
    zinx__sock_stream_t *ss = ZINX__CONTAINER_OF(io, zinx__sock_stream_t, io);
    ss->on_ready(ss->owner, events);
}

static int sock_start(zinx__stream_t *s, zinx__loop_t *loop,
                      zinx__stream_ready_fn on_ready, void *owner)
{
    zinx__sock_stream_t *ss = sock_of(s);
    ss->loop = loop;
    ss->on_ready = on_ready;
    ss->owner = owner;
    return zinx__io_start(loop, &ss->io, ss->fd, 0);
}

static void sock_rebind(zinx__stream_t *s, zinx__stream_ready_fn on_ready,
                        void *owner)
{
    zinx__sock_stream_t *ss = sock_of(s);
    ss->on_ready = on_ready;
    ss->owner = owner;
}

static int errno_code(void)
{
    return errno == EWOULDBLOCK ? ZINX_EAGAIN : -errno;
}

/*
 * The data calls go through syscall(): glibc's read() and send() are
 * cancellation points, and in a process with more than one thread each
 * call pays for switching asynchronous cancellation on and off (about 60
 * instructions per message, more than the rest of the read path). The
 * library never cancels its threads, so it asks the kernel directly.
 *
 * Sanitizer builds keep glibc's calls: the sanitizers see only those.
 * ASan checks the buffers handed to the kernel, and TSan takes a write
 * to a socket and the read of it on the other side as synchronisation,
 * as the kernel makes it; without that, a program that publishes state
 * before replying and reads it after the reply would be reported.
 */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SOCK_LIBC_CALLS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SOCK_LIBC_CALLS 1
#endif
#endif

#ifdef SOCK_LIBC_CALLS
static ssize_t sys_read(int fd, void *buf, size_t len)
{
    return read(fd, buf, len);
}

static ssize_t sys_send(int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *mh)
{
    return sendmsg(fd, mh, MSG_NOSIGNAL);
}
#else
static ssize_t sys_read(int fd, void *buf, size_t len)
{
    return (ssize_t)syscall(SYS_read, fd, buf, len);
}

static ssize_t sys_send(int fd, const void *buf, size_t len)
{
    return (ssize_t)syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, NULL, 0);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *mh)
{
    return (ssize_t)syscall(SYS_sendmsg, fd, mh, MSG_NOSIGNAL);
}
#endif

static ssize_t sock_read(zinx__stream_t *s, void *buf, size_t len)
{
    zinx__sock_stream_t *ss = sock_of(s);
    for (;;) {
        ssize_t n = sys_read(ss->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno_code();
    }
}

static ssize_t send_vector(int fd, const struct iovec *iov, int n)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
    return sys_sendmsg(fd, &mh);
}

static ssize_t sock_writev(zinx__stream_t *s, const struct iovec *iov, int n)
{
    zinx__sock_stream_t *ss = sock_of(s);
    for (;;) {
        /* One buffer, the common case, goes through send(): the kernel
           then has no message header or vector to copy in. */
        ssize_t w = n == 1 ? sys_send(ss->fd, iov[0].iov_base, iov[0].iov_len)
                           : send_vector(ss->fd, iov, n);
        if (w >= 0)
            return w;
        if (errno != EINTR)
            return errno_code();
    }
}

static int sock_shutdown(zinx__stream_t *s)
{
    return shutdown(sock_of(s)->fd, SHUT_WR) == 0 ? 0 : -errno;
}

static int sock_want(zinx__stream_t *s, uint32_t events)
{
    zinx__sock_stream_t *ss = sock_of(s);
    return zinx__io_update(ss->loop, &ss->io, events);
}

size_t zinx__sock_outq(int fd)
{
    int queued = 0; /* sent but not acknowledged, or not sent yet */
    if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0)
        return 0;
    return (size_t)queued;
}

long zinx__sock_since_ack_ms(int fd, bool tcp)
{
    if (!tcp)
        return -1;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return -1;
    return (long)ti.tcpi_last_ack_recv;
}

static size_t sock_unacked(zinx__stream_t *s)
{
    return zinx__sock_outq(sock_of(s)->fd);
}

static long sock_since_ack_ms(zinx__stream_t *s)
{
    zinx__sock_stream_t *ss = sock_of(s);
    return zinx__sock_since_ack_ms(ss->fd, ss->tcp);
}

static int sock_error(zinx__stream_t *s)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(sock_of(s)->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return err != 0 ? -err : ZINX_ECONNRESET;
}

static void sock_close(zinx__stream_t *s)
{
    zinx__sock_stream_t *ss = sock_of(s);
    if (ss->fd < 0)
        return;
    if (ss->loop != NULL)
        zinx__io_stop(ss->loop, &ss->io);
    close(ss->fd);
    ss->fd = -1;
}

static const zinx__stream_ops_t sock_ops = {
    .name = "socket",
    .kind = ZINX__LAYER_TRANSPORT,
    .start = sock_start,
    .read = sock_read,
    .writev = sock_writev,
    .shutdown = sock_shutdown,
    .want = sock_want,
    .handshake = NULL,
    .unacked = sock_unacked,
    .since_ack_ms = sock_since_ack_ms,
    .error = sock_error,
    .close = sock_close,
    .rebind = sock_rebind,
};

/* Fills both address texts of s; returns whether fd is a TCP socket. */
static bool read_addrs(int fd, zinx__stream_t *s)
{
    bool tcp = false;
    struct sockaddr_storage a;
    socklen_t len = sizeof(a);
    memset(&a, 0, sizeof(a));
    if (getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        zinx__addr_format(&a, len, s->local);
        tcp = a.ss_family == AF_INET || a.ss_family == AF_INET6;
    }
    len = sizeof(a);
    memset(&a, 0, sizeof(a));
    if (getpeername(fd, (struct sockaddr *)&a, &len) == 0)
        zinx__addr_format(&a, len, s->remote);
    /* A Unix client socket is usually unnamed: show the path it reached. */
    if (!tcp && strcmp(s->remote, "?") == 0)
        memcpy(s->remote, s->local, sizeof(s->remote));
    return tcp;
}

bool zinx__sock_prepare(int fd, zinx__stream_t *s)
{
    strcpy(s->remote, "?");
    strcpy(s->local, "?");
    bool tcp = read_addrs(fd, s);
    if (tcp) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return tcp;
}

void zinx__sock_stream_init(zinx__sock_stream_t *ss, int fd)
{
    memset(ss, 0, sizeof(*ss));
    ss->base.ops = &sock_ops;
    ss->fd = fd;
    zinx__io_init(&ss->io, on_io);
    ss->tcp = zinx__sock_prepare(fd, &ss->base);
}
