/*
 * zinx-echo: answers every message, whatever its ID, with the same ID and
 * payload.
 *
 * How to run (from the build directory):
 *
 *     ./bin/zinx-echo                      # reads ./conf/zinx.json
 *     ZINX_CONFIG_FILE_PATH=/etc/echo.json ./bin/zinx-echo
 *
 * It is configured only by zinx.json: $ZINX_CONFIG_FILE_PATH when set (a
 * missing file there is a configuration error), else ./conf/zinx.json,
 * else the built-in defaults (0.0.0.0:8999, tlv).
 * With "TCPPort": 0 the system picks a free port. When the server is
 * ready it prints one line on stdout, "listening on HOST:PORT", so that
 * scripts can wait for it and read the port. SIGTERM or SIGINT stops it
 * gracefully (every received message is answered first) and it exits 0,
 * also when the signal comes while it is still starting. SIGHUP reopens
 * the log file (with LogFile set).
 *
 * Exit status: 0 after a clean stop, 2 for a configuration error, 1 for
 * anything else (port in use, out of memory).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* pthread_sigmask */
#endif

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <zinx.h>

#define PROG "zinx-echo"

/* Reports configuration warnings (unknown keys, missing file). */
static void print_warning(zinx_log_level_t level, const char *message,
                          void *udata)
{
    (void)udata;
    fprintf(stderr, PROG ": %s: %s\n", zinx_log_level_name(level), message);
}

/* The fallback router: every message with no router of its own. */
static void echo_message(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    int rc =
        zinx_conn_send_msg(conn, zinx_request_msg_id(req),
                           zinx_request_data(req), zinx_request_data_len(req));
    /* A closed peer is not worth a message, and the library already
       logs (rate-limited) a connection it closes for reading too slowly
       (ENOBUFS) or for want of memory (ENOMEM). */
    if (rc < 0 && rc != ZINX_ECLOSED && rc != ZINX_ENOBUFS && rc != ZINX_ENOMEM)
        zinx_server_log(
            zinx_conn_server(conn), ZINX_LOG_WARN, "conn %llu: echo failed: %s",
            (unsigned long long)zinx_conn_id(conn), zinx_strerror(rc));
}

static int load_config(zinx_config_t *cfg)
{
    char err[512] = "";

    zinx_config_default(cfg);
    if (zinx_config_load_default(cfg, err, sizeof err, print_warning, NULL) <
            0 ||
        zinx_config_validate(cfg, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": configuration error: %s\n", err);
        return -1;
    }
    return 0;
}

/*
 * Prints the address actually bound rather than Host, which may be a name
 * or "" (all interfaces). IPv6 is printed in brackets so that HOST:PORT
 * stays parsable.
 */
static void print_listening(const zinx_server_t *server)
{
    const char *host = zinx_server_listen_host(server);
    int port = zinx_server_port(server);
    if (port == 0) /* Mode "kcp": its UDP port */
        port = zinx_server_kcp_port(server);
    if (strchr(host, ':') != NULL)
        printf("listening on [%s]:%d\n", host, port);
    else
        printf("listening on %s:%d\n", host, port);
    fflush(stdout);
}

/*
 * Blocks SIGINT and SIGTERM first thing, before the configuration is
 * read and before any thread exists: a stop request that comes during
 * start-up then waits for serve, which stops cleanly, instead of killing
 * us. SIGHUP too, which serve turns into a log reopen. SIGPIPE is
 * ignored: this program owns its process, and a closed stdout (a
 * script that read the "listening on" line and left) must not kill it.
 */
static void set_up_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int run(zinx_server_t *server)
{
    zinx_router_t echo = {.handle = echo_message};
    int rc = zinx_server_set_fallback_router(server, &echo);

    if (rc == 0)
        rc = zinx_server_start(server);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", zinx_strerror(rc));
        return rc == ZINX_ECONFIG ? 2 : 1;
    }
    print_listening(server);
    rc = zinx_server_serve(server);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", zinx_strerror(rc));
        return 1;
    }
    return 0;
}

int main(void)
{
    set_up_signals();
    zinx_config_t cfg;

    if (load_config(&cfg) < 0)
        return 2;
    zinx_server_t *server = zinx_server_new(&cfg);
    if (server == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    int status = run(server);
    zinx_server_free(server);
    return status;
}
