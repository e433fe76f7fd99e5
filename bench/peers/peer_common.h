/*
 * Small helpers shared by the C echo peers: argument parsing, the
 * "listening on HOST:PORT" line, frame scanning and the descriptor limit.
 * Header-only so that each peer stays one translation unit plus this.
 */
#ifndef ZINX_PEER_COMMON_H
#define ZINX_PEER_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define PEER_HOST "127.0.0.1"
#define PEER_HEADER 8u
/* Larger declared payloads close the connection, as MaxPacketSize does. */
#define PEER_MAX_PAYLOAD (16u * 1024u * 1024u)

/* Port from argv[1] ("0" or absent: the system picks one); -1 if bad. */
static inline int peer_port_arg(int argc, char **argv, const char *prog)
{
    if (argc < 2)
        return 0;
    char *end;
    long v = strtol(argv[1], &end, 10);
    if (argc > 2 || end == argv[1] || *end != '\0' || v < 0 || v > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", prog);
        return -1;
    }
    return (int)v;
}

static inline void peer_print_listening(int port)
{
    printf("listening on " PEER_HOST ":%d\n", port);
    fflush(stdout);
}

/*
 * Prepares the process: as many descriptors as allowed, and no SIGPIPE
 * (a client that leaves with echoes in flight must not kill the server).
 */
static inline void peer_setup_process(void)
{
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* TLV: id u32 big-endian, then len u32 big-endian. */
static inline uint32_t peer_frame_len(const uint8_t *h)
{
    return (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 |
           (uint32_t)h[7];
}

/*
 * Length of the complete frames at the start of p[0..n): the bytes to
 * echo. Sets *bad when a header declares more than PEER_MAX_PAYLOAD.
 */
static inline size_t peer_complete(const uint8_t *p, size_t n, int *bad)
{
    size_t off = 0;

    *bad = 0;
    while (n - off >= PEER_HEADER) {
        uint32_t len = peer_frame_len(p + off);
        if (len > PEER_MAX_PAYLOAD) {
            *bad = 1;
            break;
        }
        if (n - off - PEER_HEADER < len)
            break;
        off += PEER_HEADER + len;
    }
    return off;
}

/* Bytes still missing to complete the frame that starts at p[0..n). */
static inline size_t peer_missing(const uint8_t *p, size_t n)
{
    if (n < PEER_HEADER)
        return PEER_HEADER - n;
    return PEER_HEADER + (size_t)peer_frame_len(p) - n;
}

#endif /* ZINX_PEER_COMMON_H */
