/*
 * zinx-demo-server: connection hooks, properties and a ping router.
 *
 * How to run (from the build directory), in two terminals:
 *
 *     ./bin/zinx-demo-server 127.0.0.1 8999
 *     ./bin/zinx-demo-client 127.0.0.1 8999
 *
 * or both at once: scripts/demo.sh <builddir> (alias: make demo).
 * Usage: zinx-demo-server [HOST [PORT [FORMAT]]], defaults 127.0.0.1,
 * 8999 and tlv (FORMAT may be tlv or ltv_le). PORT 0 picks a free port.
 * The server prints "listening on HOST:PORT" once it accepts connections
 * and runs until SIGINT (Ctrl-C) or SIGTERM, then stops gracefully and
 * exits 0.
 *
 * What it shows:
 *   - OnConnStart prints "OnConnStart: conn <id> from <addr>", stores a
 *     "session" property and sends a welcome message (ID 2);
 *   - the ping router on message ID 1 sends two replies per message, both
 *     with ID 1: first the 4 bytes "ping", then the received payload echoed
 *     back; it also counts the messages in the "session" property;
 *   - OnConnStop prints "OnConnStop: conn <id>" followed by what the
 *     "session" property holds, which the library frees right after.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, flockfile */
#endif

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zinx.h>

#define PROG "zinx-demo-server"
#define MSG_PING 1
#define MSG_WELCOME 2

/* The per-connection state kept in the "session" property. */
typedef struct session {
    struct timespec opened;
    unsigned messages;
} session_t;

/* Hooks run on several workers at once: keep each line whole. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    flockfile(stdout);
    vprintf(fmt, ap);
    fflush(stdout);
    funlockfile(stdout);
    va_end(ap);
}

static unsigned long long conn_number(const zinx_conn_t *conn)
{
    return (unsigned long long)zinx_conn_id(conn);
}

static void send_or_warn(zinx_conn_t *conn, uint32_t id, const void *data,
                         uint32_t len)
{
    int rc = zinx_conn_send_msg(conn, id, data, len);

    if (rc < 0)
        fprintf(stderr, PROG ": conn %llu: send failed: %s\n",
                conn_number(conn), zinx_strerror(rc));
}

static void on_conn_start(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    say("OnConnStart: conn %llu from %s\n", conn_number(conn),
        zinx_conn_remote_addr(conn));

    session_t *s = calloc(1, sizeof *s);
    if (s != NULL) {
        clock_gettime(CLOCK_MONOTONIC, &s->opened);
        /* The library owns s from here on and frees it with free(). */
        if (zinx_conn_set_property(conn, "session", s, free) < 0)
            free(s);
    }

    char welcome[96];
    int n =
        snprintf(welcome, sizeof welcome,
                 "welcome to " PROG ", you are conn %llu", conn_number(conn));
    send_or_warn(conn, MSG_WELCOME, welcome, (uint32_t)n);
}

static void on_ping(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    void *value;

    /* Handlers of one connection never run at once: no lock needed. */
    if (zinx_conn_get_property(conn, "session", &value) == 0)
        ((session_t *)value)->messages++;
    send_or_warn(conn, MSG_PING, "ping", 4);
    send_or_warn(conn, MSG_PING, zinx_request_data(req),
                 zinx_request_data_len(req));
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) +
           (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_conn_stop(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    void *value;

    /* Properties are still readable here; they are freed right after. */
    if (zinx_conn_get_property(conn, "session", &value) == 0) {
        const session_t *s = value;
        say("OnConnStop: conn %llu (session: %u ping messages in %.1f ms)\n",
            conn_number(conn), s->messages, seconds_since(&s->opened) * 1000.0);
    } else {
        say("OnConnStop: conn %llu (no session property)\n", conn_number(conn));
    }
}

static int parse_args(int argc, char **argv, zinx_config_t *cfg)
{
    if (argc > 4) {
        fprintf(stderr, "usage: " PROG " [HOST [PORT [FORMAT]]]\n");
        return -1;
    }
    if (argc > 1)
        snprintf(cfg->host, sizeof cfg->host, "%s", argv[1]);
    if (argc > 2) {
        char *end;
        long port = strtol(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || port < 0 || port > 65535) {
            fprintf(stderr, PROG ": bad port '%s'\n", argv[2]);
            return -1;
        }
        cfg->tcp_port = (int)port;
    }
    if (argc > 3 &&
        zinx_packet_format_parse(argv[3], &cfg->packet_format) < 0) {
        fprintf(stderr, PROG ": bad format '%s' (tlv or ltv_le)\n", argv[3]);
        return -1;
    }
    return 0;
}

static int setup(zinx_server_t *server)
{
    zinx_router_t ping = {.handle = on_ping};
    int rc = zinx_server_add_router(server, MSG_PING, &ping);

    if (rc == 0)
        rc = zinx_server_on_conn_start(server, on_conn_start, NULL);
    if (rc == 0)
        rc = zinx_server_on_conn_stop(server, on_conn_stop, NULL);
    if (rc == 0)
        rc = zinx_server_start(server);
    return rc;
}

static int run(zinx_server_t *server)
{
    int rc = setup(server);

    if (rc < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", zinx_strerror(rc));
        return 1;
    }
    /* The bound address: the host argument may be a name or "". */
    const char *host = zinx_server_listen_host(server);
    if (strchr(host, ':') != NULL)
        say("listening on [%s]:%d\n", host, zinx_server_port(server));
    else
        say("listening on %s:%d\n", host, zinx_server_port(server));
    rc = zinx_server_serve(server);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", zinx_strerror(rc));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    zinx_config_t cfg;

    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof cfg.host, "127.0.0.1");
    snprintf(cfg.name, sizeof cfg.name, PROG);
    if (parse_args(argc, argv, &cfg) < 0)
        return 2;

    /* A stop signal arriving before serve() then waits for it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    zinx_server_t *server = zinx_server_new(&cfg);
    if (server == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    int status = run(server);
    zinx_server_free(server);
    return status;
}
