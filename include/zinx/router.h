/*
 * Routers: what runs for a message ID.
 *
 * Two ways to say it, usable together on one server (Zinx's
 * RouterSlicesMode key is accepted and selects nothing):
 *
 * Classic routers (Zinx's IRouter): three optional steps and one
 * user-data pointer, registered per message ID with
 * zinx_server_add_router(). For each message the framework calls
 * pre_handle, handle, then post_handle (NULL steps are skipped);
 * zinx_request_abort() inside a step skips the steps after it.
 *
 * Router slices (Zinx's AddRouterSlices, Use, Group): a route is a chain
 * of handlers, each a function and its user data (zinx_handler_t).
 * zinx_server_use() adds global middleware, zinx_server_group() a group
 * of message IDs [start, end] with middleware of its own. A route's chain
 * is resolved once, when it is registered:
 *
 *     global middleware registered so far
 *   + its group's middleware registered so far (routes of a group)
 *   + its own handlers (a classic router: its non-NULL steps, in order)
 *
 * so middleware added later never reaches routes registered earlier (as
 * in Zinx), and a classic router is a chain of up to three steps that
 * the global middleware registered before it wraps too.
 *
 * Running a chain, the framework calls the handlers in order. Each
 * handler may:
 *   - return: the framework calls the next handler not yet run;
 *   - call zinx_request_next(): the rest of the chain runs now, inside
 *     that call, which returns once it is done; the framework then has
 *     nothing left to run, so code after zinx_request_next() runs after
 *     every later handler (Zinx's RouterSlicesNext, Gin's c.Next());
 *   - call zinx_request_abort(): no handler not yet started runs. The
 *     calling handler runs to its end, and handlers that are inside
 *     zinx_request_next() further up resume after it as usual.
 * Hence, exactly as in Zinx: every handler runs at most once; nested
 * zinx_request_next() calls unwind in reverse order (onion); a second
 * zinx_request_next() in one handler does nothing (all that follows has
 * run); zinx_request_abort() after zinx_request_next() changes nothing
 * but zinx_request_is_aborted(); zinx_request_next() after
 * zinx_request_abort() runs nothing. In a classic router, next inside
 * pre_handle runs handle and post_handle at once.
 *
 * Handlers run on the connection's worker thread (connID %
 * WorkerPoolSize), or on its I/O thread when WorkerPoolSize is 0.
 * Messages of one connection are handled one at a time, in arrival
 * order, on that thread, together with the connection's OnConnStart and
 * OnConnStop hooks. All registration happens before zinx_server_start()
 * (ZINX_ESTATE after), on the thread that owns the server.
 *
 *     static void on_ping(zinx_request_t *req, void *udata)
 *     {
 *         (void)udata;
 *         zinx_conn_send_msg(zinx_request_conn(req), 1, "ping", 4);
 *     }
 *     zinx_router_t ping = { .handle = on_ping };
 *     zinx_server_add_router(server, 1, &ping);
 *
 *     zinx_handler_t logmw = { log_message, NULL };
 *     zinx_handler_t pong = { on_ping, NULL };
 *     zinx_server_use(server, &logmw, 1);       // later routes only
 *     zinx_server_add_route(server, 2, &pong, 1); // log, then on_ping
 */
#ifndef ZINX_ROUTER_H
#define ZINX_ROUTER_H

#include <stddef.h>
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
typedef struct zinx_server zinx_server_t;

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

/* One handler of a chain (Zinx's RouterHandler): fn(req, udata). */
typedef struct zinx_handler {
    zinx_handler_fn fn; /* never NULL */
    void *udata;        /* passed to fn, never touched */
} zinx_handler_t;

/* The most handlers a resolved chain may hold (middleware included);
   Zinx allows 127. Registering a longer one returns ZINX_EINVAL. */
#define ZINX_CHAIN_MAX 256u

/*
 * A group of message IDs with middleware of its own (Zinx's Group), made
 * by zinx_server_group(). Owned by the server: valid until
 * zinx_server_free(), never freed by the user.
 */
typedef struct zinx_group zinx_group_t;

/*
 * Appends n handlers to the global middleware (Zinx's Use). They are
 * copied, and run first in every route registered after this call
 * (zinx_server_add_route, zinx_server_add_router, the groups' routes,
 * zinx_server_set_fallback_router); routes registered before keep their
 * chains. Returns 0, ZINX_EINVAL (server NULL, handlers NULL with n > 0,
 * a NULL fn, more than ZINX_CHAIN_MAX in all), ZINX_ENOMEM or
 * ZINX_ESTATE after start. Thread: the owner's, before start.
 */
int zinx_server_use(zinx_server_t *server, const zinx_handler_t *handlers,
                    size_t n);

/*
 * Registers a route for message ID id (Zinx's AddRouterSlices): the
 * global middleware registered so far, then the n handlers (copied; n
 * may be 0). Returns 0, ZINX_EEXIST when id already has a route or a
 * router, ZINX_EINVAL (as zinx_server_use), ZINX_ENOMEM or ZINX_ESTATE
 * after start. Thread: the owner's, before start.
 */
int zinx_server_add_route(zinx_server_t *server, uint32_t id,
                          const zinx_handler_t *handlers, size_t n);

/*
 * Makes a group of the message IDs start..end (both included) whose
 * routes run the global middleware, then the n handlers given here
 * (copied) and those of later zinx_group_use() calls, then their own.
 * Groups may overlap; a message ID still has one route. *group (set
 * only on success) is owned by the server. Returns 0, ZINX_EINVAL
 * (start > end, group NULL, or as zinx_server_use), ZINX_ENOMEM or
 * ZINX_ESTATE after start. Thread: the owner's, before start.
 */
int zinx_server_group(zinx_server_t *server, uint32_t start, uint32_t end,
                      const zinx_handler_t *handlers, size_t n,
                      zinx_group_t **group);

/*
 * Appends n handlers (copied) to group's middleware: they run in the
 * group's routes registered after this call. Returns as
 * zinx_server_use(). Thread: the owner's, before start.
 */
int zinx_group_use(zinx_group_t *group, const zinx_handler_t *handlers,
                   size_t n);

/*
 * Registers a route of the group: global middleware, group middleware,
 * then the n handlers (copied). id outside [start, end] returns
 * ZINX_EINVAL and registers nothing; otherwise returns as
 * zinx_server_add_route(). Thread: the owner's, before start.
 */
int zinx_group_add_route(zinx_group_t *group, uint32_t id,
                         const zinx_handler_t *handlers, size_t n);

/*
 * A classic router in a group: global middleware, group middleware,
 * then router's non-NULL steps (copied). Returns as
 * zinx_group_add_route(). Thread: the owner's, before start.
 */
int zinx_group_add_router(zinx_group_t *group, uint32_t id,
                          const zinx_router_t *router);

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
 * Skips the handlers of this message's chain that have not started
 * (Zinx's Abort): in a classic router, the remaining steps. The current
 * handler runs to its end; see the top of this file for next/abort.
 * Thread: the handler's own, during the call.
 */
void zinx_request_abort(zinx_request_t *req);

/*
 * Runs the rest of the chain now and returns after it (Zinx's
 * RouterSlicesNext); the framework will not run those handlers again.
 * Does nothing when nothing is left or after zinx_request_abort(). See
 * the top of this file. Thread: the handler's own, during the call.
 */
void zinx_request_next(zinx_request_t *req);

/* Nonzero once zinx_request_abort() was called for this message. */
int zinx_request_is_aborted(const zinx_request_t *req);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_ROUTER_H */
