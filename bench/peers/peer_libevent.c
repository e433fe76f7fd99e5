/*
 * peer-libevent: the frame echo as a careful libevent 2.1 user writes it
 * with bufferevents. Frame headers are read in place through an
 * evbuffer_ptr, and every complete frame moves from the input to the
 * output evbuffer with one evbuffer_remove_buffer (chains change hands,
 * no new evbuffer, no copy of the payload in most cases). Reads take up
 * to 64 KiB and writes up to 1 MiB at once instead of libevent's default
 * 16 KiB each (which splits every 16 KiB frame in two writes), and a
 * connection whose output passes 4 MiB stops reading until it drains.
 *
 *     peer-libevent [PORT]     prints "listening on 127.0.0.1:PORT"
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "peer_common.h"

#define PROG "peer-libevent"
#define READ_MAX (64 * 1024)
#define WRITE_MAX (1024 * 1024)
#define OUTPUT_HIGH (4u * 1024u * 1024u)

/* Bytes of the complete frames at the front of in; -1 if one is too big. */
static long complete_frames(struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in), off = 0;
    struct evbuffer_ptr pos;
    uint8_t hdr[PEER_HEADER];

    if (evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET) != 0)
        return 0;
    while (avail - off >= PEER_HEADER) {
        if (evbuffer_copyout_from(in, &pos, hdr, PEER_HEADER) !=
            (ev_ssize_t)PEER_HEADER)
            break;
        uint32_t len = peer_frame_len(hdr);
        if (len > PEER_MAX_PAYLOAD)
            return -1;
        if (avail - off - PEER_HEADER < len)
            break;
        off += PEER_HEADER + len;
        if (off == avail || evbuffer_ptr_set(in, &pos, PEER_HEADER + len,
                                             EVBUFFER_PTR_ADD) != 0)
            break;
    }
    return (long)off;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    long n = complete_frames(in);

    (void)arg;
    if (n < 0) {
        bufferevent_free(bev);
        return;
    }
    if (n > 0)
        evbuffer_remove_buffer(in, out, (size_t)n);
    if (evbuffer_get_length(out) > OUTPUT_HIGH)
        bufferevent_disable(bev, EV_READ);
}

/* Called when the output has drained: reading may go on. */
static void on_drained(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (!(bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg)
{
    struct event_base *base = arg;
    int one = 1;

    (void)l;
    (void)sa;
    (void)socklen;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev =
        bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_set_max_single_read(bev, READ_MAX);
    bufferevent_set_max_single_write(bev, WRITE_MAX);
    bufferevent_setcb(bev, on_read, on_drained, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static struct evconnlistener *start(struct event_base *base, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof sa;

    inet_pton(AF_INET, PEER_HOST, &sa.sin_addr);
    struct evconnlistener *l = evconnlistener_new_bind(
        base, on_accept, base, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
        (struct sockaddr *)&sa, sizeof sa);
    if (l == NULL || getsockname(evconnlistener_get_fd(l),
                                 (struct sockaddr *)&sa, &len) != 0) {
        perror(PROG ": listen");
        return NULL;
    }
    peer_print_listening(ntohs(sa.sin_port));
    return l;
}

int main(int argc, char **argv)
{
    int port = peer_port_arg(argc, argv, PROG);

    if (port < 0)
        return 2;
    peer_setup_process();
    struct event_base *base = event_base_new();
    if (base == NULL || start(base, port) == NULL)
        return 1;
    return event_base_dispatch(base) == 0 ? 0 : 1;
}
