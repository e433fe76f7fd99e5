/*
 * The Python extension module _zinx: what its files share.
 *
 *   module.c   the module: types, config_json(), stopping servers at exit
 *   server.c   Server: routers, hooks, start/serve/stop, the connection
 *              manager's lookups, dialing out
 *   conn.c     Connection: one Python object per connection, sends,
 *              close, properties holding Python objects
 *   conn_close.c  Connection's close callbacks (Python callables kept
 *              by the connection)
 *   request.c  Request: the message a handler is called with
 *   bridge.c   calling Python from the library's threads: the GIL, the
 *              sends a handler queues, exceptions to the log
 *
 * Threads. The library's workers (or its I/O threads with WorkerPoolSize
 * 0) call into Python through bridge.c, which takes the GIL for the
 * Python call only. Sends and closes made during that call are queued
 * (in order) and carried out right after it, with the GIL released, so
 * framing, reading and writing never wait for the GIL.
 *
 * Lifetime. A Connection object holds a reference on its zinx_conn_t, and
 * the connection holds the Connection object (a property) until its
 * properties are released after OnConnStop: the same object is handed
 * out for the whole life of the connection, and Python objects kept in
 * its properties are released exactly then.
 */
#ifndef PYZINX_H
#define PYZINX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "zinx.h"

/* ---- server.c ----------------------------------------------------------- */

typedef struct pz_route pz_route_t;
typedef struct pz_dialers pz_dialers_t;

typedef struct {
    PyObject_HEAD zinx_server_t *srv;
    PyObject *on_start; /* callables, or NULL */
    PyObject *on_stop;
    pz_route_t *routes; /* kept until the server is freed */
    pz_dialers_t *dialers;
    uint32_t max_packet;
    int client;  /* made by zinx_client_new */
    int running; /* started, not yet stopped and waited for */
    int serving; /* a thread is inside Serve() */
} pz_server_obj_t;

extern PyTypeObject pz_server_type;

/* ---- module.c ----------------------------------------------------------- */

/*
 * *cfg = the defaults, then the file the C library reads
 * ($ZINX_CONFIG_FILE_PATH, else ./conf/zinx.json), then `overrides` (a
 * JSON object text), validated. Returns 0, or -1 with ValueError set.
 */
int pz_config_load(zinx_config_t *cfg, const char *overrides);

/* ---- conn.c ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD zinx_conn_t *conn; /* a reference of ours */
    uint64_t id;
    uint32_t max_packet;
} pz_conn_obj_t;

extern PyTypeObject pz_conn_type;

/* Property keys of the binding's own; user keys may not start so. */
#define PZ_RESERVED_PREFIX "zinx.python:"

/* Releases a property value that is a Python object (any thread). */
void pz_release_value(void *value);

/* Connection.AddCloseCallback / RemoveCloseCallback (conn_close.c). */
PyObject *pz_conn_add_close_callback(pz_conn_obj_t *self, PyObject *args);
PyObject *pz_conn_remove_close_callback(pz_conn_obj_t *self, PyObject *args);

/*
 * The Connection object of conn (a new reference): the one kept in its
 * properties, made and kept there on first use. GIL held. NULL with an
 * exception set when out of memory.
 */
PyObject *pz_conn_wrap(zinx_conn_t *conn, uint32_t max_packet);

/* ---- request.c ---------------------------------------------------------- */

typedef struct {
    PyObject_HEAD zinx_request_t *req; /* NULL once its handler returned */
    PyObject *conn;                    /* Connection, made on first use */
    PyObject *data;                    /* bytes, made on first use */
    uint32_t msg_id;
    uint32_t max_packet;
    int aborted;
} pz_request_obj_t;

extern PyTypeObject pz_request_type;

/* A Request for req (a new reference), valid until pz_request_end(),
   which also drops that reference. GIL held. */
pz_request_obj_t *pz_request_new(zinx_request_t *req, uint32_t max_packet);
void pz_request_end(pz_request_obj_t *r);

/* ---- bridge.c ----------------------------------------------------------- */

/*
 * One call into Python from a library thread. pz_call_begin() takes the
 * GIL (keeping a Python thread state for this thread from then on) and
 * starts queueing sends; pz_call_end() releases the GIL and carries the
 * queued sends and closes out.
 */
typedef struct pz_call pz_call_t;
pz_call_t *pz_call_begin(void);
void pz_call_end(pz_call_t *call);

/*
 * Inside a call on this thread: queues a send (data copied) or a close
 * of conn and returns 1, or 0 outside a call (the caller then acts at
 * once). -1 with MemoryError set when out of memory. GIL held.
 */
int pz_call_queue_send(zinx_conn_t *conn, uint32_t id, const void *data,
                       uint32_t len);
int pz_call_queue_close(zinx_conn_t *conn);

/*
 * One spare object per thread, for reuse by the next call on the same
 * thread (a Request nobody kept). take returns it (a reference) or NULL;
 * put keeps obj's reference, or drops it when the slot is full. Only
 * inside a call; the spare is dropped when the thread ends.
 */
PyObject *pz_call_take_spare(void);
void pz_call_put_spare(PyObject *obj);

/* Whether this thread is inside a call from the library (a handler or a
   hook of some server). */
int pz_in_library_call(void);

/*
 * Logs the Python exception that is set (and clears it) through srv's
 * log at error level, with its traceback, saying where it happened.
 * GIL held.
 */
void pz_log_exception(zinx_server_t *srv, const char *where);

/* Raises the Python exception that stands for a ZINX_E* code. */
PyObject *pz_raise(int rc, const char *what);

#endif /* PYZINX_H */
