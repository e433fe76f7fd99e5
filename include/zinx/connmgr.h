/*
 * Connection manager: the server's table of open connections by ID.
 *
 * A connection is added when it is accepted and removed right after its
 * OnConnStop hook returns, so it can still be found from its own
 * OnConnStop. All functions may be called from any thread, including
 * handlers and hooks; none of them calls user code while holding the
 * manager's lock.
 */
#ifndef ZINX_CONNMGR_H
#define ZINX_CONNMGR_H

#include <stddef.h>
#include <stdint.h>

#include "zinx/conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef struct zinx_connmgr zinx_connmgr_t;

/*
 * Visitor for zinx_connmgr_foreach(). conn is borrowed for the call.
 * Return 0 to continue, anything else to stop the walk.
 */
typedef int (*zinx_conn_visit_fn)(zinx_conn_t *conn, void *udata);

/*
 * Connections whose handshakes (PROXY header, TLS, WebSocket upgrade) are
 * not over yet are in the table, so that they count for MaxConn and a
 * stop ends them, but only zinx_connmgr_count() sees them: get, foreach
 * and ids (and so notify and broadcast) show a connection from the
 * moment its OnConnStart is scheduled, when its addresses are final.
 */

/* Number of connections in the table, those in their handshake too. */
size_t zinx_connmgr_count(const zinx_connmgr_t *mgr);

/*
 * Returns a new reference to the connection with this ID, or NULL. The
 * caller must zinx_conn_unref() it.
 */
zinx_conn_t *zinx_connmgr_get(zinx_connmgr_t *mgr, uint64_t id);

/*
 * Calls visit for every connection of a snapshot taken at the call, in
 * no particular order, outside the lock (visit may send, close, or call
 * any manager function). Returns the first nonzero value visit returned,
 * 0 when it visited them all, or ZINX_ENOMEM.
 */
int zinx_connmgr_foreach(zinx_connmgr_t *mgr, zinx_conn_visit_fn visit,
                         void *udata);

/*
 * Writes up to cap connection IDs to ids and returns how many the table
 * held (which may exceed cap, and counts those in their handshake, whose
 * IDs are not written).
 */
size_t zinx_connmgr_ids(zinx_connmgr_t *mgr, uint64_t *ids, size_t cap);

/*
 * Closes every connection: gracefully (zinx_conn_close) when graceful is
 * nonzero, else at once (zinx_conn_close_now). Returns at once; the
 * closes complete on the I/O threads. Returns 0; it allocates nothing,
 * so it works when memory is exhausted.
 */
int zinx_connmgr_close_all(zinx_connmgr_t *mgr, int graceful);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_CONNMGR_H */
