/*
 * Interceptors: code that sees every decoded message before routing
 * (Zinx's IInterceptor / IChain).
 *
 * Interceptors are registered with zinx_server_add_interceptor() and run
 * in registration order, each inside the previous one's
 * zinx_chain_proceed(); routing (the message's route, router or the
 * fallback) runs inside the last one's. An interceptor may:
 *   - read the message: zinx_chain_msg(), zinx_chain_conn();
 *   - rewrite it: pass a changed zinx_msg_t to zinx_chain_proceed() (ID,
 *     length, data: data may point to memory the interceptor owns, which
 *     must stay valid until zinx_chain_proceed() returns);
 *   - answer it itself: send on zinx_chain_conn() and not proceed;
 *   - drop it: return without proceeding;
 *   - proceed: zinx_chain_proceed(chain, &msg), at most once per call.
 *
 * Interceptors run on the thread that runs the connection's handlers
 * (its worker, or its I/O thread when WorkerPoolSize is 0), one message
 * at a time per connection, in arrival order, so they need no locking
 * for per-connection state. Nothing is allocated per message: the chain
 * lives on that thread's stack. With no interceptor registered, a message
 * goes straight to routing.
 *
 *     static void log_msg(zinx_chain_t *chain, void *udata)
 *     {
 *         zinx_msg_t m = zinx_chain_msg(chain);
 *         printf("message %u, %u bytes\n", m.id, m.len);
 *         zinx_chain_proceed(chain, &m);
 *     }
 *     zinx_server_add_interceptor(server, log_msg, NULL);
 */
#ifndef ZINX_INTERCEPTOR_H
#define ZINX_INTERCEPTOR_H

#include <stdint.h>

#include "zinx/pack.h"
#include "zinx/router.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef struct zinx_conn zinx_conn_t;
typedef struct zinx_server zinx_server_t;
/* One interceptor's view of one message; valid only during its call. */
typedef struct zinx_chain zinx_chain_t;

/* An interceptor (Zinx's Intercept): fn(chain, udata). */
typedef void (*zinx_interceptor_fn)(zinx_chain_t *chain, void *udata);

/*
 * Appends fn to the server's interceptors; udata is passed to it and
 * never touched. Returns 0, ZINX_EINVAL (server or fn NULL, or already
 * ZINX_CHAIN_MAX of them: each is a stack frame while a message runs),
 * ZINX_ENOMEM or ZINX_ESTATE after start. Thread: the owner's, before
 * start.
 */
int zinx_server_add_interceptor(zinx_server_t *server, zinx_interceptor_fn fn,
                                void *udata);

/*
 * The message as this interceptor received it (the decoded frame, or
 * what the previous interceptor passed on). msg.data is never NULL and
 * is valid only during the call.
 */
zinx_msg_t zinx_chain_msg(const zinx_chain_t *chain);

/* The connection the message came from (borrowed for the call). */
zinx_conn_t *zinx_chain_conn(const zinx_chain_t *chain);

/*
 * Passes msg (copied; msg->data borrowed until this returns) to the next
 * interceptor, or to routing after the last one, and returns when they
 * are done. Returns 0; ZINX_EINVAL (chain or msg NULL, data NULL with
 * len > 0) or ZINX_ESTATE when this interceptor already proceeded: the
 * message is routed at most once, a second call does nothing.
 * Thread: the interceptor's own, during its call.
 */
int zinx_chain_proceed(zinx_chain_t *chain, const zinx_msg_t *msg);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_INTERCEPTOR_H */
