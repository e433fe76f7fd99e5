/*
 * Connections.
 *
 * A zinx_conn_t is one accepted TCP connection. The framework creates and
 * frees it; user code never frees one.
 *
 * Lifetime rule. A connection is reference counted and is freed only when
 * the last reference is gone, so a pointer you hold a reference on is
 * never dangling:
 *   - inside a router step or a hook, the connection passed in is
 *     borrowed: valid until the call returns;
 *   - to keep it longer (another thread, a timer, a table of players),
 *     take a reference with zinx_conn_ref() and drop it with
 *     zinx_conn_unref() when done;
 *   - zinx_connmgr_get() returns a new reference.
 * Holding a reference keeps the memory, not the connection: once it
 * closes, sends fail with ZINX_ECLOSED and properties are gone.
 *
 * Close. zinx_conn_close() is graceful: reading stops, messages already
 * received are still handled, their replies are flushed, then the socket
 * closes. zinx_conn_close_now() drops unsent output and closes at once.
 * Both are idempotent and may be called from any thread, including from
 * the connection's own handlers and hooks. Whatever closes a connection
 * (peer, error, oversize frame, close call, server stop), OnConnStop runs
 * exactly once, after the last handler of the connection has returned.
 *
 * Threads. Every function here may be called from any thread.
 */
#ifndef ZINX_CONN_H
#define ZINX_CONN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef struct zinx_conn zinx_conn_t;
typedef struct zinx_server zinx_server_t;

/*
 * Called with a connection; udata is what was registered. Used for
 * OnConnStart and OnConnStop (see zinx_server_on_conn_start()).
 */
typedef void (*zinx_conn_hook_fn)(zinx_conn_t *conn, void *udata);

/* Destroys a property value when it is replaced, removed or released. */
typedef void (*zinx_property_free_fn)(void *value);

/* Adds a reference and returns conn. */
zinx_conn_t *zinx_conn_ref(zinx_conn_t *conn);

/* Drops a reference; the last one frees the connection. NULL is a no-op. */
void zinx_conn_unref(zinx_conn_t *conn);

/* The connection's ID: unique within its server, from 1, never reused. */
uint64_t zinx_conn_id(const zinx_conn_t *conn);

/* The server that accepted the connection. */
zinx_server_t *zinx_conn_server(const zinx_conn_t *conn);

/*
 * The peer's and the local address as "1.2.3.4:5678" or "[::1]:5678", or
 * for a Unix domain socket its path (an unnamed client side shows the
 * path it reached; a path longer than 55 bytes is shown by its tail after
 * "..."). "?" when the system could not tell. The string lives as long
 * as the connection.
 *
 * Behind a proxy that sends a PROXY protocol header (ProxyProtocol),
 * these are the client's address and the address it connected to, as
 * the header names them; zinx_conn_peer_addr() gives the proxy's. They
 * are fixed before OnConnStart runs, and never change after. Thread:
 * any, once the connection was handed to the program.
 */
const char *zinx_conn_remote_addr(const zinx_conn_t *conn);
const char *zinx_conn_local_addr(const zinx_conn_t *conn);
/*
 * The address of the socket's peer itself: the proxy's when a PROXY
 * protocol header named the client, else the same as
 * zinx_conn_remote_addr(). Thread: any.
 */
const char *zinx_conn_peer_addr(const zinx_conn_t *conn);

/* The worker that runs this connection's handlers and hooks: connID %
   WorkerPoolSize with WorkerMode Hash, the worker it owns with Bind and
   DynamicBind (free for another connection once its OnConnStop ran); 0
   with WorkerPoolSize 0. Fixed for the connection's life. Any thread. */
uint32_t zinx_conn_worker_id(const zinx_conn_t *conn);

/* Nonzero while the connection is open and not closing. */
int zinx_conn_is_open(const zinx_conn_t *conn);

/*
 * Queues one message (id, data[0..len)) for sending. data is copied
 * before the call returns. Messages sent from one thread leave in the
 * order they were sent; the owning I/O thread is woken to write them.
 * Never blocks on the network.
 * While a graceful close drains (zinx_conn_close, or the peer's
 * half-close), sends still succeed, so the replies to messages already
 * received go out. Returns 0, ZINX_EMSGSIZE when len > MaxPacketSize,
 * ZINX_ECLOSED after zinx_conn_close_now() or once the connection has
 * finished (its last reply flushed, or closed by an error), ZINX_ENOBUFS when
 * its unsent output would pass OutputHardLimit (the peer reads too slowly; the
 * connection is then closed at once), ZINX_ENOMEM (the message could not be
 * queued: the connection is then closed at once, since its replies would
 * have a hole), or ZINX_EINVAL.
 */
int zinx_conn_send_msg(zinx_conn_t *conn, uint32_t id, const void *data,
                       uint32_t len);

/*
 * Nonzero while zinx_conn_send_msg() would take a message on the
 * connection's state: open, or draining after a graceful close (whose
 * replies still go out); 0 after zinx_conn_close_now() or once it has
 * finished, and for NULL. Size and output limits are not looked at. For
 * code that sends later on behalf of now (a language binding queueing a
 * handler's sends) and wants to refuse at once what would be refused
 * then; the state can change right after the call. Thread: any.
 */
int zinx_conn_can_send(const zinx_conn_t *conn);

/*
 * Why the connection ended: 0 while it is open and after an orderly end
 * (a close call, the peer's EOF, a server stop), else the ZINX_E* code of
 * what cut it: ZINX_EMSGSIZE (a frame above MaxPacketSize), ZINX_ETIMEDOUT
 * (frame deadline, idle timeout, heartbeat), ZINX_ENOBUFS (output limits:
 * the peer did not read), ZINX_EPROTO (MaxUnknownMsgs), ZINX_ENOMEM, or a
 * socket error such as ZINX_ECONNRESET. Final once OnConnStop runs, so
 * read it there. Thread: any.
 */
int zinx_conn_close_reason(const zinx_conn_t *conn);

/* Graceful close (see above). Returns 0, or ZINX_EINVAL for NULL. */
int zinx_conn_close(zinx_conn_t *conn);

/* Immediate close (see above). Returns 0, or ZINX_EINVAL for NULL. */
int zinx_conn_close_now(zinx_conn_t *conn);

/*
 * Stores value under key (copied), replacing and freeing any previous
 * value. free_fn (may be NULL) runs when the value is replaced, removed,
 * or released after OnConnStop. Returns 0, ZINX_EINVAL, ZINX_ENOMEM, or
 * ZINX_ECLOSED once the properties were released; on error the caller
 * keeps ownership of value. free_fn runs without any framework lock held.
 */
int zinx_conn_set_property(zinx_conn_t *conn, const char *key, void *value,
                           zinx_property_free_fn free_fn);

/*
 * Sets *value to the value stored under key. Returns 0 or ZINX_ENOENT.
 * The value stays owned by the connection; it is valid until it is
 * replaced or removed, or until OnConnStop returns.
 */
int zinx_conn_get_property(zinx_conn_t *conn, const char *key, void **value);

/* Removes and frees the value under key. Returns 0 or ZINX_ENOENT. */
int zinx_conn_remove_property(zinx_conn_t *conn, const char *key);

/*
 * One pointer of user data per connection, never touched by the library
 * (it does not free it). Set and read it with your own synchronisation
 * when several threads use it; hooks and handlers of one connection run
 * one at a time, so they need none among themselves.
 */
/*
 * Async completion: runs fn(conn, udata) on the connection's handler
 * thread (its worker, or its I/O thread with WorkerPoolSize 0), after the
 * messages already handed to the handlers and in posting order, and
 * always before OnConnStop. Call it from any thread, typically one of
 * your own that finished a slow call (a database query) for a request:
 * the answer is then sent from the connection's thread, in order with
 * its other replies. The function keeps a reference to conn until fn has
 * run; udata is the caller's. Returns 0, ZINX_ECLOSED once the connection
 * has ended (OnConnStop was scheduled: fn will never run), ZINX_EINVAL or
 * ZINX_ENOMEM. Thread: any.
 */
typedef void (*zinx_conn_job_fn)(zinx_conn_t *conn, void *udata);
int zinx_conn_post(zinx_conn_t *conn, zinx_conn_job_fn fn, void *udata);

void zinx_conn_set_data(zinx_conn_t *conn, void *data);
void *zinx_conn_data(const zinx_conn_t *conn);

/*
 * Keyed close callbacks (Zinx's AddCloseCallback / RemoveCloseCallback).
 *
 * A close callback is fn(conn, owner, key, udata), hung on the connection
 * under the pair (owner, key): two opaque pointers compared by value, as
 * Zinx's handler and key (say owner = the module or object that cares,
 * key = what for). Whatever ends the connection (peer EOF or reset, a
 * close call, close_now, server stop, an oversized frame, a timeout, the
 * output limits), the callbacks then registered run exactly once, in the
 * order they were added, on the connection's handler thread (its worker,
 * or its I/O thread with WorkerPoolSize 0), right after OnConnStop has
 * returned and before the connection's properties are released and it
 * leaves the connection manager. conn is valid during the call and may be
 * passed to any connection function: it is closed, so sends return
 * ZINX_ECLOSED; properties can still be read. No library lock is held.
 *
 * Adding a pair that is already there replaces its fn and udata and
 * keeps its place in the order (Zinx since PR #388: the same handler
 * and key replace). Returns 0, ZINX_EINVAL (conn or fn NULL),
 * ZINX_ENOMEM, or ZINX_ECLOSED once the callbacks have been taken to run
 * (fn will then never run; adding from OnConnStop still works, from a
 * close callback it does not). udata is the caller's: the library never
 * frees it, so free it in fn or after removing. Thread: any.
 */
typedef void (*zinx_close_fn)(zinx_conn_t *conn, const void *owner,
                              const void *key, void *udata);
int zinx_conn_add_close_callback(zinx_conn_t *conn, const void *owner,
                                 const void *key, zinx_close_fn fn,
                                 void *udata);

/*
 * Removes the callback of (owner, key) so that it never runs. Returns 0,
 * ZINX_ENOENT when there is none (never added, removed already, or
 * already taken to run), or ZINX_EINVAL. Thread: any; a callback that is
 * running at the time finishes.
 */
int zinx_conn_remove_close_callback(zinx_conn_t *conn, const void *owner,
                                    const void *key);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_CONN_H */
