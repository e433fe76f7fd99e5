/*
 * zinx-mmo: the MMO demo's world server, Zinx's mmo_game on this library
 * (examples/mmo/README.md).
 *
 *     ./bin/zinx-mmo                        # reads ./conf/zinx.json
 *     ZINX_CONFIG_FILE_PATH=examples/mmo/conf/zinx.json ./bin/zinx-mmo
 *
 * Configured by zinx.json as zinx-echo is, on the demo's own defaults:
 * PacketFormat "ltv_le" (Zinx's demo frames), Mode "" (players on
 * TCPPort 8999, the live map on WsPort 9000: the page at "/", its feed on
 * WsPath "/ws"). With port 0 a free port is picked. When ready it prints
 * "listening on HOST:PORT" (players) and "map on http://HOST:PORT/" on
 * stdout. SIGTERM or SIGINT stops it gracefully; it then prints one line
 * of counts ("mmo: joined=N left=N ...") and exits 0.
 *
 * With ClusterName and ClusterNode (1..MMO_NODE_MAX) it is one node of a
 * cluster: its own world, player IDs from its node's range, world chat
 * shared with every node (README, "On two nodes"). It then also prints
 * "node N of cluster NAME" when ready, "cluster: node M up" (or "down")
 * as other nodes come and go, and its exit line carries the cluster's
 * chat counts too.
 *
 * Exit status: 0 after a clean stop, 2 for a configuration error, 1 for
 * anything else.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* pthread_sigmask */
#endif

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <zinx.h>
#include <zinx/cluster.h>

#include "cluster_chat.h"
#include "engine.h"
#include "map_page.h"
#include "players.h"
#include "protocol.h"

#define PROG "zinx-mmo"

static void print_warning(zinx_log_level_t level, const char *message,
                          void *udata)
{
    (void)udata;
    fprintf(stderr, PROG ": %s: %s\n", zinx_log_level_name(level), message);
}

/* The demo's defaults, then zinx.json over them. */
static int load_config(zinx_config_t *cfg)
{
    char err[512] = "";
    zinx_config_default(cfg);
    snprintf(cfg->name, sizeof(cfg->name), "%s", PROG);
    cfg->packet_format = ZINX_FORMAT_LTV_LE;
    cfg->mode = ZINX_MODE_TCP_WS;
    cfg->ws_port = 9000;
    snprintf(cfg->ws_path, sizeof(cfg->ws_path), "/ws");
    if (zinx_config_load_default(cfg, err, sizeof err, print_warning, NULL) <
            0 ||
        zinx_config_validate(cfg, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": configuration error: %s\n", err);
        return -1;
    }
    /* Player IDs carry the node (protocol.h) and must stay int32. */
    if (cfg->cluster_name[0] != '\0' && cfg->cluster_node > MMO_NODE_MAX) {
        fprintf(stderr,
                PROG ": configuration error: ClusterNode %u: the MMO demo "
                     "takes nodes 1..%d (its player IDs are node * %d + n)\n",
                (unsigned)cfg->cluster_node, MMO_NODE_MAX, MMO_PID_NODE_STRIDE);
        return -1;
    }
    return 0;
}

/* A HOST:PORT to print: IPv6 in brackets; all interfaces as loopback,
   which a browser on this machine can open. */
static void print_addr(const char *what, const char *scheme, const char *host,
                       int port, const char *path)
{
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 ||
        strcmp(host, "::") == 0)
        host = scheme[0] ? "127.0.0.1" : host;
    const char *open = strchr(host, ':') ? "[" : "",
               *close = open[0] ? "]" : "";
    printf("%s %s%s%s%s:%d%s\n", what, scheme, open, host, close, port, path);
}

static void print_ready(const zinx_server_t *server)
{
    const char *host = zinx_server_listen_host(server);
    if (zinx_server_port(server) > 0)
        print_addr("listening on", "", host, zinx_server_port(server), "");
    if (zinx_server_ws_port(server) > 0)
        print_addr("map on", "http://", host, zinx_server_ws_port(server), "/");
    const zinx_config_t *cfg = zinx_server_config(server);
    if (cfg->cluster_name[0] != '\0')
        printf("node %u of cluster %s\n", (unsigned)cfg->cluster_node,
               cfg->cluster_name);
    fflush(stdout);
}

static void print_counts(mmo_engine_t *e, bool cluster)
{
    mmo_counters_t *c = mmo_engine_counters(e);
    printf("mmo: joined=%llu left=%llu moves=%llu chats=%llu broadcasts=%llu "
           "refused_malformed=%llu refused_position=%llu "
           "refused_chat_size=%llu refused_chat_rate=%llu",
           (unsigned long long)atomic_load(&c->joined),
           (unsigned long long)atomic_load(&c->left),
           (unsigned long long)atomic_load(&c->moves),
           (unsigned long long)atomic_load(&c->chats),
           (unsigned long long)atomic_load(&c->broadcasts),
           (unsigned long long)atomic_load(&c->refused_malformed),
           (unsigned long long)atomic_load(&c->refused_position),
           (unsigned long long)atomic_load(&c->refused_chat_size),
           (unsigned long long)atomic_load(&c->refused_chat_rate));
    if (cluster)
        printf(" chats_out=%llu chats_out_failed=%llu chats_in=%llu "
               "refused_chats_in=%llu",
               (unsigned long long)atomic_load(&c->chats_out),
               (unsigned long long)atomic_load(&c->chats_out_failed),
               (unsigned long long)atomic_load(&c->chats_in),
               (unsigned long long)atomic_load(&c->refused_chats_in));
    printf("\n");
    fflush(stdout);
}

/* Stop requests wait for serve, which stops gracefully (as zinx-echo). */
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

/* The live map's page at "/" on the WebSocket port, beside its feed. */
static int add_map_page(zinx_server_t *server)
{
    size_t len = 0;
    const unsigned char *page = mmo_map_page(&len);
    return zinx_server_add_http_page(server, "/", "text/html; charset=utf-8",
                                     page, len);
}

/* On the cluster's thread: tells the operator (and the tests, which wait
   for it before they talk) which nodes share the chat now. */
static void on_node(zinx_server_t *server, uint32_t node, int up, void *udata)
{
    (void)server;
    (void)udata;
    printf("cluster: node %u %s\n", (unsigned)node, up ? "up" : "down");
    fflush(stdout);
}

/* In a cluster: IDs of the node's range, and chat shared by every node. */
static int join_cluster(zinx_server_t *server, mmo_engine_t *e)
{
    const zinx_config_t *cfg = zinx_server_config(server);
    if (cfg->cluster_name[0] == '\0')
        return 0;
    mmo_engine_set_node(e, cfg->cluster_node);
    int rc = zinx_cluster_on_node(server, on_node, NULL);
    return rc == 0 ? mmo_cluster_chat_install(server, e) : rc;
}

static int run(zinx_server_t *server, mmo_engine_t *e)
{
    bool cluster = zinx_server_config(server)->cluster_name[0] != '\0';
    int rc = mmo_players_install(server, e);
    if (rc == 0)
        rc = join_cluster(server, e);
    if (rc == 0)
        rc = add_map_page(server);
    if (rc == 0 && (rc = mmo_engine_start(e)) == 0)
        rc = zinx_server_start(server);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", zinx_strerror(rc));
        return rc == ZINX_ECONFIG ? 2 : 1;
    }
    print_ready(server);
    rc = zinx_server_serve(server);
    /* Every OnConnStop ran: the world gets the last departures. */
    mmo_engine_stop(e);
    print_counts(e, cluster);
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
    mmo_engine_t *e =
        server ? mmo_engine_new(server,
                                zinx_server_config(server)->max_packet_size)
               : NULL;
    if (e == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        zinx_server_free(server);
        return 1;
    }
    int status = run(server, e);
    mmo_engine_stop(e);
    zinx_server_free(server);
    mmo_engine_free(e);
    return status;
}
