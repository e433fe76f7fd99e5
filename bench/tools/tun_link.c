/*
 * zinx-tun-link: an impaired network link for benchmarks, made of a TUN
 * device that reflects every packet back with loss and delay, so that TCP
 * and KCP (UDP) can be measured over the same link on a kernel without
 * netem (scripts/bench-kcp.sh).
 *
 * How to run (root, inside a network namespace of its own, which the
 * script makes with `unshare --net`):
 *
 *     zinx-tun-link --loss 10 --delay 50 --jitter 20 [--seed N]
 *
 * It creates a TUN device with the address 10.77.0.1/24, brings it and
 * lo up, and prints one line, "link up DEV 10.77.0.1/24 ...", once the
 * link carries packets. The kernel then routes every packet for another
 * address of 10.77.0.0/24 to the device. Each such IPv4 packet is dropped
 * with probability --loss (percent), or held for --delay ms plus a uniform
 * draw in [-jitter, +jitter] ms (so packets overtake each other, as on a
 * real jittery path), then written back with its source and destination
 * addresses swapped. The swap keeps every checksum valid, since the IP and
 * the TCP/UDP pseudo-header sums are sums of the same 16-bit words in
 * another order. So a client at 10.77.0.1:x that connects to
 * 10.77.0.2:y reaches a server bound to 10.77.0.1:y (or 0.0.0.0:y) as
 * 10.77.0.2:x, and the server's replies come back the same way: both
 * directions cross the impairment once each (one round trip costs two
 * delays and two chances of loss), for TCP and UDP alike.
 *
 * Delays run on a min-heap of due times: reading is never paused by a
 * held packet. At most --queue packets are held; beyond that a packet
 * is dropped and counted (the link's own buffer overflowing). SIGTERM or
 * SIGINT stops it; it then prints its counters on stderr and exits 0.
 * IPv6 and anything else that is not IPv4 is dropped and counted.
 *
 * Exit status: 0 after a clean stop, 2 for bad arguments, 1 when the
 * device cannot be made (not root, no /dev/net/tun).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "zinx-tun-link"
#define LINK_ADDR "10.77.0.1"
#define LINK_MASK "255.255.255.0"
#define LINK_MTU 1500
#define READ_BATCH 64

typedef struct link_opts {
    double loss;      /* probability in [0, 1] */
    double delay_ms;  /* mean one-way delay */
    double jitter_ms; /* half-width of the uniform spread */
    uint64_t seed;
    size_t max_queue; /* packets held at most */
} link_opts_t;

/* A packet held until due_ns; seq keeps equal due times in FIFO order. */
typedef struct held_pkt {
    uint64_t due_ns;
    uint64_t seq;
    size_t len;
    uint8_t data[];
} held_pkt_t;

typedef struct pkt_heap {
    held_pkt_t **items;
    size_t len, cap;
} pkt_heap_t;

typedef struct link_stats {
    uint64_t read, not_ipv4, lost, overflow, sent, write_errors;
    size_t max_held;
} link_stats_t;

typedef struct link_state {
    link_opts_t opts;
    int tun_fd;
    int sig_fd;
    uint64_t rng;
    uint64_t next_seq;
    pkt_heap_t heap;
    link_stats_t stats;
} link_state_t;

/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast and good enough to draw losses and delays. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------ heap */

static int held_before(const held_pkt_t *a, const held_pkt_t *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_swap(pkt_heap_t *h, size_t i, size_t j)
{
    held_pkt_t *t = h->items[i];
    h->items[i] = h->items[j];
    h->items[j] = t;
}

/* The caller has checked that the heap has room (len < cap). */
static void heap_push(pkt_heap_t *h, held_pkt_t *p)
{
    size_t i = h->len++;
    h->items[i] = p;
    while (i > 0 && held_before(h->items[i], h->items[(i - 1) / 2])) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static held_pkt_t *heap_pop(pkt_heap_t *h)
{
    held_pkt_t *top = h->items[0];
    h->items[0] = h->items[--h->len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->len && held_before(h->items[l], h->items[m]))
            m = l;
        if (r < h->len && held_before(h->items[r], h->items[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(h, i, m);
        i = m;
    }
    return top;
}

/* ------------------------------------------------------------ setup */

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, link_opts_t *o)
{
    *o = (link_opts_t){.seed = 1, .max_queue = 65536};
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (v == NULL)
            goto bad;
        if (strcmp(k, "--loss") == 0 && parse_double(v, 0, 100, &d) == 0)
            o->loss = d / 100.0;
        else if (strcmp(k, "--delay") == 0 &&
                 parse_double(v, 0, 60000, &d) == 0)
            o->delay_ms = d;
        else if (strcmp(k, "--jitter") == 0 &&
                 parse_double(v, 0, 60000, &d) == 0)
            o->jitter_ms = d;
        else if (strcmp(k, "--seed") == 0 && parse_double(v, 0, 1e15, &d) == 0)
            o->seed = (uint64_t)d;
        else if (strcmp(k, "--queue") == 0 && parse_double(v, 1, 1e7, &d) == 0)
            o->max_queue = (size_t)d;
        else
            goto bad;
    }
    if (o->jitter_ms > o->delay_ms) {
        fprintf(stderr, PROG ": --jitter must not exceed --delay\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr,
            "usage: " PROG " [--loss PERCENT] [--delay MS] [--jitter MS]"
            " [--seed N] [--queue PACKETS]\n");
    return -1;
}

static int set_addr(int s, unsigned long req, const char *dev, const char *ip)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev);
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sin->sin_addr);
    return ioctl(s, req, &ifr);
}

static int set_up(int s, const char *dev)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(s, SIOCSIFFLAGS, &ifr);
}

static int set_mtu(int s, const char *dev, int mtu)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev);
    ifr.ifr_mtu = mtu;
    return ioctl(s, SIOCSIFMTU, &ifr);
}

/* Gives the device its address, netmask and MTU and brings it and lo up:
   the route to 10.77.0.0/24 comes with the address. */
static int configure(const char *dev)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    int rc = 0;
    if (set_up(s, "lo") < 0 || set_addr(s, SIOCSIFADDR, dev, LINK_ADDR) < 0 ||
        set_addr(s, SIOCSIFNETMASK, dev, LINK_MASK) < 0 ||
        set_mtu(s, dev, LINK_MTU) < 0 || set_up(s, dev) < 0)
        rc = -1;
    close(s);
    return rc;
}

/* A TUN device (IP packets, no packet-info header), non-blocking. */
static int open_tun(char *dev, size_t dev_size)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "zinxlink%%d");
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    snprintf(dev, dev_size, "%s", ifr.ifr_name);
    return fd;
}

/* SIGINT and SIGTERM arrive as a readable descriptor in the poll set. */
static int open_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* ------------------------------------------------------------ the link */

/* Swaps the IPv4 source and destination addresses: a permutation of the
   words every checksum sums, so none needs recomputing. */
static void reflect(uint8_t *ip)
{
    uint8_t tmp[4];
    memcpy(tmp, ip + 12, 4);
    memcpy(ip + 12, ip + 16, 4);
    memcpy(ip + 16, tmp, 4);
}

static uint64_t draw_delay_ns(link_state_t *st)
{
    double ms = st->opts.delay_ms;
    if (st->opts.jitter_ms > 0)
        ms += (2.0 * rng_unit(&st->rng) - 1.0) * st->opts.jitter_ms;
    return ms <= 0 ? 0 : (uint64_t)(ms * 1e6);
}

/* One packet read from the device: dropped, or held until due. */
static void take_packet(link_state_t *st, const uint8_t *buf, size_t len,
                        uint64_t now)
{
    st->stats.read++;
    if (len < 20 || (buf[0] >> 4) != 4) {
        st->stats.not_ipv4++;
        return;
    }
    if (st->opts.loss > 0 && rng_unit(&st->rng) < st->opts.loss) {
        st->stats.lost++;
        return;
    }
    held_pkt_t *p = NULL;
    if (st->heap.len < st->heap.cap)
        p = malloc(sizeof *p + len);
    if (p == NULL) {
        st->stats.overflow++;
        return;
    }
    p->due_ns = now + draw_delay_ns(st);
    p->seq = st->next_seq++;
    p->len = len;
    memcpy(p->data, buf, len);
    heap_push(&st->heap, p);
    if (st->heap.len > st->stats.max_held)
        st->stats.max_held = st->heap.len;
}

/* Reads what the kernel has queued, a batch at most, so that writing due
   packets is not starved by a flood. */
static void read_packets(link_state_t *st)
{
    uint8_t buf[LINK_MTU + 64];
    for (int i = 0; i < READ_BATCH; i++) {
        ssize_t n = read(st->tun_fd, buf, sizeof buf);
        if (n <= 0)
            return;
        take_packet(st, buf, (size_t)n, now_ns());
    }
}

/* Writes back, reflected, every held packet whose time has come. */
static void send_due(link_state_t *st, uint64_t now)
{
    while (st->heap.len > 0 && st->heap.items[0]->due_ns <= now) {
        held_pkt_t *p = heap_pop(&st->heap);
        reflect(p->data);
        if (write(st->tun_fd, p->data, p->len) == (ssize_t)p->len)
            st->stats.sent++;
        else
            st->stats.write_errors++;
        free(p);
    }
}

/* The time until the next held packet is due, in *ts; NULL (wait for a
   packet or a signal) when none is held. */
static struct timespec *next_wait(const link_state_t *st, uint64_t now,
                                  struct timespec *ts)
{
    if (st->heap.len == 0)
        return NULL;
    uint64_t due = st->heap.items[0]->due_ns;
    uint64_t wait = due > now ? due - now : 0;
    ts->tv_sec = (time_t)(wait / 1000000000u);
    ts->tv_nsec = (long)(wait % 1000000000u);
    return ts;
}

static void run(link_state_t *st)
{
    struct pollfd fds[2] = {{.fd = st->tun_fd, .events = POLLIN},
                            {.fd = st->sig_fd, .events = POLLIN}};
    for (;;) {
        struct timespec ts;
        int n = ppoll(fds, 2, next_wait(st, now_ns(), &ts), NULL);
        if (n < 0 && errno != EINTR)
            return;
        if (fds[1].revents != 0)
            return;
        if (fds[0].revents & POLLIN)
            read_packets(st);
        send_due(st, now_ns());
    }
}

static void print_stats(const link_state_t *st)
{
    const link_stats_t *s = &st->stats;
    fprintf(stderr,
            PROG ": read %llu, lost %llu, not IPv4 %llu, overflow %llu, "
                 "sent %llu, write errors %llu, most held %zu\n",
            (unsigned long long)s->read, (unsigned long long)s->lost,
            (unsigned long long)s->not_ipv4, (unsigned long long)s->overflow,
            (unsigned long long)s->sent, (unsigned long long)s->write_errors,
            s->max_held);
}

static void free_held(link_state_t *st)
{
    while (st->heap.len > 0)
        free(heap_pop(&st->heap));
    free(st->heap.items);
}

int main(int argc, char **argv)
{
    link_state_t st = {.tun_fd = -1, .sig_fd = -1};
    if (parse_args(argc, argv, &st.opts) < 0)
        return 2;
    st.rng = st.opts.seed;
    st.heap.cap = st.opts.max_queue;
    st.heap.items = calloc(st.heap.cap, sizeof *st.heap.items);
    char dev[IFNAMSIZ];
    st.sig_fd = open_signals();
    st.tun_fd = open_tun(dev, sizeof dev);
    if (st.heap.items == NULL || st.sig_fd < 0 || st.tun_fd < 0 ||
        configure(dev) < 0) {
        fprintf(stderr, PROG ": cannot set up the link: %s%s\n",
                strerror(errno),
                errno == EPERM ? " (needs root in its network namespace)" : "");
        free(st.heap.items);
        return 1;
    }
    printf("link up %s " LINK_ADDR "/24 loss %g%% delay %g ms jitter %g ms\n",
           dev, st.opts.loss * 100.0, st.opts.delay_ms, st.opts.jitter_ms);
    fflush(stdout);
    run(&st);
    print_stats(&st);
    free_held(&st);
    close(st.tun_fd);
    close(st.sig_fd);
    return 0;
}
