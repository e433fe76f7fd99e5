/*
 * Routers: what runs for a message ID.
 *
 * A router is three optional steps and one user-data pointer, registered
 * per message ID with zinx_server_add_router(). For each message the
 * framework calls pre_handle, handle, then post_handle (NULL steps are
 * skipped); zinx_request_abort() inside a step skips the steps after it.
 *
 * Steps run on the connection's worker thread (connID % WorkerPoolSize),
 * or on its I/O thread when WorkerPoolSize is 0. Messages of one
 * connection are handled one at a time, in arrival order, on that thread,
 * together with the connection's OnConnStart and OnConnStop hooks.
 *
 *     static void on_ping(zinx_request_t *req, void *udata)
 *     {
 *         (void)udata;
 *         zinx_conn_send_msg(zinx_request_conn(req), 1, "ping", 4);
 *     }
 *     zinx_router_t ping = { .handle = on_ping };
 *     zinx_server_add_router(server, 1, &ping);
 */
#ifndef ZINX_ROUTER_H
#define ZINX_ROUTER_H

#include <stdint.h>

#include "zinx/pack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef struct zinx_conn zinx_conn_t;
typedef struct zinx_request zinx_request_t;

/*
 * One step of a router. req and everything reached through it are valid
 * only during the call; copy the data you keep, and take a reference
 * (zinx_conn_ref) to keep the connection.
 */
typedef void (*zinx_handler_fn)(zinx_request_t *req, void *udata);

typedef struct zinx_router {
    zinx_handler_fn pre_handle;  /* may be NULL */
    zinx_handler_fn handle;      /* may be NULL */
    zinx_handler_fn post_handle; /* may be NULL */
    void *udata;                 /* passed to each step, never touched */
} zinx_router_t;

/* The connection the message came from (borrowed for the call). */
zinx_conn_t *zinx_request_conn(const zinx_request_t *req);

/* The message ID. */
uint32_t zinx_request_msg_id(const zinx_request_t *req);

/*
 * The payload (NULL-safe: a valid pointer even when the length is 0).
 * Valid only during the call.
 */
const uint8_t *zinx_request_data(const zinx_request_t *req);

/* The payload length in bytes. */
uint32_t zinx_request_data_len(const zinx_request_t *req);

/* The whole message as a value; msg.data follows zinx_request_data(). */
zinx_msg_t zinx_request_msg(const zinx_request_t *req);

/*
 * Skips the remaining steps of this message's router (Zinx's Abort).
 * The current step runs to its end. Thread: the handler's own.
 */
void zinx_request_abort(zinx_request_t *req);

/* Nonzero once zinx_request_abort() was called for this message. */
int zinx_request_is_aborted(const zinx_request_t *req);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_ROUTER_H */
