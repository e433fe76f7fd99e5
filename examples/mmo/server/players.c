/* Hooks and routers of the MMO server: see players.h. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include "players.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <zinx/websocket.h>

#include "aoi.h"
#include "checks.h"
#include "protocol.h"

/* The player ID as a connection property, as Zinx's demo keeps it. */
#define PID_PROPERTY "pid"

static void count(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add(counter, 1);
}

/* ---- hooks ------------------------------------------------------------- */

/* A WebSocket connection is a map viewer: players come over TCP, as
   Zinx's Unity client and robot do. */
static bool is_viewer(zinx_conn_t *conn)
{
    return zinx_conn_ws_path(conn) != NULL;
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    mmo_engine_t *e = udata;
    if (is_viewer(conn)) {
        if (!mmo_engine_viewer_join(e, zinx_conn_id(conn)))
            zinx_conn_close(conn);
        return;
    }
    mmo_session_t *s = calloc(1, sizeof(*s));
    int32_t *pid = malloc(sizeof(*pid));
    if (s == NULL || pid == NULL) {
        free(s);
        free(pid);
        zinx_conn_close(conn);
        return;
    }
    s->pid = *pid = mmo_engine_next_pid(e);
    s->conn_id = zinx_conn_id(conn);
    s->chat_tokens = MMO_CHAT_BURST;
    if (zinx_conn_set_property(conn, PID_PROPERTY, pid, free) != 0) {
        free(pid);
        free(s);
        zinx_conn_close(conn);
        return;
    }
    if (!mmo_engine_join(e, s)) {
        free(s);
        zinx_conn_close(conn);
        return;
    }
    zinx_conn_set_data(conn, s);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    mmo_engine_t *e = udata;
    if (is_viewer(conn)) {
        mmo_engine_viewer_leave(e, zinx_conn_id(conn));
        return;
    }
    mmo_session_t *s = zinx_conn_data(conn);
    if (s == NULL)
        return; /* it never joined */
    zinx_conn_set_data(conn, NULL);
    mmo_engine_leave(e, s); /* the world thread frees s */
}

/* ---- chat rate ---------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The chat token bucket; on the connection's handler thread only. */
static bool may_talk(mmo_session_t *s)
{
    uint64_t now = now_ms();
    if (s->chat_ms != 0) {
        s->chat_tokens += (double)(now - s->chat_ms) * MMO_CHAT_PER_S / 1000.0;
        if (s->chat_tokens > MMO_CHAT_BURST)
            s->chat_tokens = MMO_CHAT_BURST;
    }
    s->chat_ms = now;
    if (s->chat_tokens < 1.0)
        return false;
    s->chat_tokens -= 1.0;
    return true;
}

/* ---- routers ----------------------------------------------------------- */

static void on_talk(zinx_request_t *req, void *udata)
{
    mmo_engine_t *e = udata;
    mmo_counters_t *c = mmo_engine_counters(e);
    mmo_session_t *s = zinx_conn_data(zinx_request_conn(req));
    if (s == NULL)
        return; /* a viewer: it sends nothing that counts */
    char text[MMO_CHAT_MAX + 1];
    switch (mmo_check_talk(zinx_request_data(req), zinx_request_data_len(req),
                           text)) {
    case MMO_OK:
        if (!may_talk(s) || !mmo_engine_talk(e, s, text))
            count(&c->refused_chat_rate);
        break;
    case MMO_BAD_CHAT_SIZE:
        count(&c->refused_chat_size);
        break;
    default:
        count(&c->refused_malformed);
        break;
    }
}

static void on_move(zinx_request_t *req, void *udata)
{
    mmo_engine_t *e = udata;
    mmo_counters_t *c = mmo_engine_counters(e);
    mmo_session_t *s = zinx_conn_data(zinx_request_conn(req));
    if (s == NULL)
        return;
    mmo_pos_t to;
    switch (mmo_check_move(mmo_engine_aoi(e), zinx_request_data(req),
                           zinx_request_data_len(req), &to)) {
    case MMO_OK:
        /* Only out of memory refuses it: the player's next move will do. */
        (void)mmo_engine_move(e, s, &to);
        break;
    case MMO_BAD_POSITION:
        count(&c->refused_position);
        break;
    default:
        count(&c->refused_malformed);
        break;
    }
}

int mmo_players_install(zinx_server_t *server, mmo_engine_t *e)
{
    zinx_router_t talk = {.handle = on_talk, .udata = e};
    zinx_router_t move = {.handle = on_move, .udata = e};
    int rc = zinx_server_add_router(server, MMO_MSG_TALK, &talk);
    if (rc == 0)
        rc = zinx_server_add_router(server, MMO_MSG_MOVE, &move);
    if (rc == 0)
        rc = zinx_server_on_conn_start(server, on_start, e);
    if (rc == 0)
        rc = zinx_server_on_conn_stop(server, on_stop, e);
    return rc;
}
