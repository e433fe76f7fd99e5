/*
 * Server: a zinx_server_t driven from Python, with the Go names of the
 * Python port (AddRouter, SetOnConnStart, Serve, ...). A client endpoint
 * is the same object made with client=True.
 *
 * Routers. One library router per message ID runs the Python steps
 * (PreHandle, Handle, PostHandle; those a BaseRouter subclass did not
 * override are passed as None and cost nothing) in one call into Python,
 * so a message takes the GIL once.
 *
 * Running. A started server is registered with atexit, which keeps it
 * alive while it runs and stops it before the interpreter finalizes (the
 * library's threads must not call into a finalizing interpreter).
 */
#include "pyzinx.h" /* Python.h first, as Python asks */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define STEPS 3

struct pz_route {
    pz_route_t *next;
    pz_server_obj_t *owner; /* outlives the route */
    uint32_t id;
    PyObject *steps[STEPS]; /* PreHandle, Handle, PostHandle, or NULL */
};

static const char *const step_names[STEPS] = {"PreHandle", "Handle",
                                              "PostHandle"};

struct pz_dialers {
    pz_dialers_t *next;
    zinx_dialer_t *dialer;
};

/* ---- calls from the library ---------------------------------------------- */

static void log_step_exception(pz_route_t *r, int step, zinx_request_t *req)
{
    char where[160];
    snprintf(where, sizeof(where),
             "%s of the router of message %u "
             "(connection %llu)",
             step_names[step], r->id,
             (unsigned long long)zinx_conn_id(zinx_request_conn(req)));
    pz_log_exception(r->owner->srv, where);
}

/* The library's handler of a Python router: its steps in one call. */
static void route_run(zinx_request_t *req, void *udata)
{
    pz_route_t *r = udata;
    pz_call_t *call = pz_call_begin();
    pz_request_obj_t *q = pz_request_new(req, r->owner->max_packet);
    if (q == NULL) {
        log_step_exception(r, 1, req);
        pz_call_end(call);
        return;
    }
    for (int i = 0; i < STEPS && !q->aborted; i++) {
        if (r->steps[i] == NULL)
            continue;
        PyObject *res = PyObject_CallOneArg(r->steps[i], (PyObject *)q);
        if (res == NULL) {
            log_step_exception(r, i, req);
            break; /* the rest of this message's steps */
        }
        Py_DECREF(res);
    }
    pz_request_end(q);
    pz_call_end(call);
}

static void call_hook(pz_server_obj_t *self, PyObject *fn, zinx_conn_t *conn,
                      const char *name)
{
    pz_call_t *call = pz_call_begin();
    PyObject *c = pz_conn_wrap(conn, self->max_packet);
    PyObject *res = c != NULL ? PyObject_CallOneArg(fn, c) : NULL;
    if (res == NULL) {
        char where[96];
        snprintf(where, sizeof(where), "%s (connection %llu)", name,
                 (unsigned long long)zinx_conn_id(conn));
        pz_log_exception(self->srv, where);
    }
    Py_XDECREF(res);
    Py_XDECREF(c);
    pz_call_end(call);
}

static void hook_start(zinx_conn_t *conn, void *udata)
{
    pz_server_obj_t *self = udata;
    call_hook(self, self->on_start, conn, "OnConnStart");
}

static void hook_stop(zinx_conn_t *conn, void *udata)
{
    pz_server_obj_t *self = udata;
    call_hook(self, self->on_stop, conn, "OnConnStop");
}

/* ---- making and freeing ----------------------------------------------------
 */

static int server_init(pz_server_obj_t *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"overrides", "client", NULL};
    const char *overrides = "{}";
    int client = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|sp:Server", names, &overrides,
                                     &client))
        return -1;
    if (self->srv != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Server.__init__ called twice");
        return -1;
    }
    zinx_config_t cfg;
    if (pz_config_load(&cfg, overrides) != 0)
        return -1;
    self->srv = client ? zinx_client_new(&cfg) : zinx_server_new(&cfg);
    if (self->srv == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->client = client;
    self->max_packet = cfg.max_packet_size;
    return 0;
}

static void close_dialers(pz_server_obj_t *self)
{
    while (self->dialers != NULL) {
        pz_dialers_t *d = self->dialers;
        self->dialers = d->next;
        zinx_dialer_close(d->dialer);
        PyMem_RawFree(d);
    }
}

static void server_dealloc(pz_server_obj_t *self)
{
    /* Not running here (a running server is kept by atexit), so no thread
       of this server is left to call into Python. */
    if (self->srv != NULL) {
        PyThreadState *ts = PyEval_SaveThread();
        close_dialers(self);
        zinx_server_free(self->srv);
        PyEval_RestoreThread(ts);
    }
    while (self->routes != NULL) {
        pz_route_t *r = self->routes;
        self->routes = r->next;
        for (int i = 0; i < STEPS; i++)
            Py_XDECREF(r->steps[i]);
        PyMem_Free(r);
    }
    Py_XDECREF(self->on_start);
    Py_XDECREF(self->on_stop);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_made(pz_server_obj_t *self)
{
    if (self->srv != NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "Server was not initialized");
    return -1;
}

/* ---- registration ----------------------------------------------------------
 */

static PyObject *server_add_router(pz_server_obj_t *self, PyObject *args)
{
    unsigned long long id;
    PyObject *steps[STEPS];
    if (!PyArg_ParseTuple(args, "KOOO:AddRouter", &id, &steps[0], &steps[1],
                          &steps[2]) ||
        check_made(self) != 0)
        return NULL;
    if (id > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "a message ID is an int from 0 to 4294967295");
        return NULL;
    }
    for (int i = 0; i < STEPS; i++)
        if (steps[i] != Py_None && !PyCallable_Check(steps[i])) {
            PyErr_Format(PyExc_TypeError, "%s must be callable or None",
                         step_names[i]);
            return NULL;
        }
    pz_route_t *r = PyMem_Calloc(1, sizeof(*r));
    if (r == NULL)
        return PyErr_NoMemory();
    r->owner = self;
    r->id = (uint32_t)id;
    zinx_router_t rt = {.handle = route_run, .udata = r};
    int rc = zinx_server_add_router(self->srv, (uint32_t)id, &rt);
    if (rc != 0) {
        PyMem_Free(r);
        return pz_raise(rc, "AddRouter");
    }
    for (int i = 0; i < STEPS; i++)
        r->steps[i] = steps[i] == Py_None ? NULL : Py_NewRef(steps[i]);
    r->next = self->routes;
    self->routes = r;
    Py_RETURN_NONE;
}

static PyObject *set_hook(pz_server_obj_t *self, PyObject *fn, PyObject **slot,
                          int start)
{
    if (check_made(self) != 0)
        return NULL;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "a hook is callable or None");
        return NULL;
    }
    zinx_conn_hook_fn c_fn = fn == Py_None ? NULL
                             : start       ? hook_start
                                           : hook_stop;
    int rc = start ? zinx_server_on_conn_start(self->srv, c_fn, self)
                   : zinx_server_on_conn_stop(self->srv, c_fn, self);
    if (rc != 0)
        return pz_raise(rc, start ? "SetOnConnStart" : "SetOnConnStop");
    Py_XSETREF(*slot, fn == Py_None ? NULL : Py_NewRef(fn));
    Py_RETURN_NONE;
}

static PyObject *server_on_start(pz_server_obj_t *self, PyObject *fn)
{
    return set_hook(self, fn, &self->on_start, 1);
}

static PyObject *server_on_stop(pz_server_obj_t *self, PyObject *fn)
{
    return set_hook(self, fn, &self->on_stop, 0);
}

static PyObject *call_now(PyObject *fn, PyObject *conn)
{
    if (!PyObject_TypeCheck(conn, &pz_conn_type)) {
        PyErr_SetString(PyExc_TypeError, "expected a Connection");
        return NULL;
    }
    if (fn == NULL)
        Py_RETURN_NONE;
    return PyObject_CallOneArg(fn, conn);
}

static PyObject *server_call_start(pz_server_obj_t *self, PyObject *conn)
{
    return call_now(self->on_start, conn);
}

static PyObject *server_call_stop(pz_server_obj_t *self, PyObject *conn)
{
    return call_now(self->on_stop, conn);
}

/* ---- running ------------------------------------------------------------- */

/* Calls atexit.register or atexit.unregister with self.Stop. */
static int at_exit(pz_server_obj_t *self, const char *what)
{
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (atexit == NULL)
        return -1;
    PyObject *stop = PyObject_GetAttrString((PyObject *)self, "Stop");
    PyObject *res =
        stop != NULL ? PyObject_CallMethod(atexit, what, "O", stop) : NULL;
    Py_XDECREF(stop);
    Py_DECREF(atexit);
    Py_XDECREF(res);
    return res != NULL ? 0 : -1;
}

static int mark_running(pz_server_obj_t *self)
{
    if (at_exit(self, "register") != 0)
        return -1;
    self->running = 1;
    return 0;
}

static void mark_stopped(pz_server_obj_t *self)
{
    self->running = 0;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb); /* an error on the way keeps its place */
    if (at_exit(self, "unregister") != 0)
        PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

static PyObject *server_start(pz_server_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (check_made(self) != 0)
        return NULL;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "Start: the server runs already");
        return NULL;
    }
    PyThreadState *ts = PyEval_SaveThread();
    int rc = zinx_server_start(self->srv);
    PyEval_RestoreThread(ts);
    if (rc != 0)
        return pz_raise(rc, "Start");
    if (mark_running(self) != 0) {
        ts = PyEval_SaveThread();
        zinx_server_stop(self->srv);
        zinx_server_wait(self->srv);
        PyEval_RestoreThread(ts);
        return NULL;
    }
    Py_RETURN_NONE;
}

/*
 * Serve() and signals. The interpreter owns the signal handlers (a
 * Python thread may be the one the kernel hands SIGINT to), so Serve()
 * does not let the library read signals: a thread of ours waits for the
 * stop and carries it out (zinx_server_wait), while the calling thread
 * keeps running Python's signal handlers. Ctrl-C (KeyboardInterrupt) and
 * SIGTERM (mapped to it meanwhile, on the main thread) ask for the
 * graceful stop, and Serve() returns once it is over.
 */
typedef struct {
    zinx_server_t *srv;
    int done_fd; /* eventfd, written when the stop is over */
    int rc;
} pz_waiter_t;

static void *waiter_main(void *arg)
{
    pz_waiter_t *w = arg;
    w->rc = zinx_server_wait(w->srv);
    (void)eventfd_write(w->done_fd, 1);
    return NULL;
}

/* Starts the waiter with the stop signals blocked, so that they reach
   the thread that runs Python's handlers or another Python thread. */
static int start_waiter(pz_waiter_t *w, pthread_t *tid)
{
    w->done_fd = eventfd(0, EFD_CLOEXEC);
    if (w->done_fd < 0)
        return -errno;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(tid, NULL, waiter_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(w->done_fd);
        return -rc;
    }
    return 0;
}

/* signal.signal(SIGTERM, handler); returns the old handler (a new
   reference), or NULL with nothing set when this is not the main
   thread or the signal module refuses. */
static PyObject *set_sigterm(PyObject *handler)
{
    PyObject *signal = PyImport_ImportModule("signal");
    PyObject *old = signal != NULL ? PyObject_CallMethod(signal, "signal", "iO",
                                                         SIGTERM, handler)
                                   : NULL;
    Py_XDECREF(signal);
    if (old == NULL) {
        /* signal.signal is Python code: a Ctrl-C may surface inside it.
           That is a request to stop, kept by raising it again. */
        int interrupted = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
        PyErr_Clear();
        if (interrupted)
            PyErr_SetInterrupt();
    }
    return old;
}

static PyObject *sigterm_as_interrupt(void)
{
    PyObject *signal = PyImport_ImportModule("signal");
    PyObject *h = signal != NULL
                      ? PyObject_GetAttrString(signal, "default_int_handler")
                      : NULL;
    Py_XDECREF(signal);
    PyObject *old = h != NULL ? set_sigterm(h) : NULL;
    Py_XDECREF(h);
    PyErr_Clear();
    return old;
}

/* Puts back the SIGTERM handler sigterm_as_interrupt() replaced (and
   drops the reference to it). An exception already set (a failed start)
   stays set: the call into Python runs with it put aside. */
static void restore_sigterm(PyObject *old)
{
    if (old == NULL)
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    Py_XDECREF(set_sigterm(old));
    Py_DECREF(old);
    PyErr_Restore(type, value, tb);
}

/*
 * Runs signal handlers until the waiter says the stop is over. The first
 * exception they raise asks for the stop; KeyboardInterrupt is how a
 * stop is asked for and is not kept, any other is returned (a new
 * reference triple in *exc) to be raised once the stop is over.
 */
static void watch_signals(pz_server_obj_t *self, pz_waiter_t *w,
                          PyObject *exc[3])
{
    struct pollfd pfd = {.fd = w->done_fd, .events = POLLIN};
    for (;;) {
        PyThreadState *ts = PyEval_SaveThread();
        int n = poll(&pfd, 1, 50);
        PyEval_RestoreThread(ts);
        if (n > 0)
            return;
        if (PyErr_CheckSignals() == 0)
            continue;
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) || exc[0] != NULL)
            PyErr_Clear();
        else
            PyErr_Fetch(&exc[0], &exc[1], &exc[2]);
        zinx_server_stop(self->srv);
    }
}

static PyObject *server_serve(pz_server_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (check_made(self) != 0)
        return NULL;
    if (self->serving || pz_in_library_call()) {
        PyErr_SetString(PyExc_RuntimeError,
                        self->serving ? "Serve: already serving"
                                      : "Serve: not from a handler or hook");
        return NULL;
    }
    /* SIGTERM is mapped before the server accepts anything: a client's
       handler may run at once, and a SIGTERM it leads to must not find
       the default action (death) still in place. */
    PyObject *old_term = sigterm_as_interrupt();
    if (!self->running) {
        PyObject *started = server_start(self, NULL);
        if (started == NULL) {
            restore_sigterm(old_term);
            return NULL;
        }
        Py_DECREF(started);
    }
    pz_waiter_t w = {.srv = self->srv};
    pthread_t tid;
    int rc = start_waiter(&w, &tid);
    if (rc != 0) {
        restore_sigterm(old_term);
        return pz_raise(rc, "Serve");
    }
    self->serving = 1;
    Py_INCREF(self);
    PyObject *exc[3] = {NULL, NULL, NULL};
    watch_signals(self, &w, exc);
    PyThreadState *ts = PyEval_SaveThread();
    pthread_join(tid, NULL);
    close(w.done_fd);
    close_dialers(self);
    PyEval_RestoreThread(ts);
    restore_sigterm(old_term);
    self->serving = 0;
    mark_stopped(self);
    Py_DECREF(self);
    if (exc[0] != NULL) {
        PyErr_Restore(exc[0], exc[1], exc[2]);
        return NULL;
    }
    if (w.rc != 0)
        return pz_raise(w.rc, "Serve");
    Py_RETURN_NONE;
}

/* Waits, without the GIL, until the thread in Serve() has returned. */
static void wait_serve_over(pz_server_obj_t *self)
{
    while (self->serving) {
        PyThreadState *ts = PyEval_SaveThread();
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
        PyEval_RestoreThread(ts);
    }
}

static PyObject *server_stop(pz_server_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (check_made(self) != 0)
        return NULL;
    zinx_server_stop(self->srv);
    if (pz_in_library_call() || !self->running)
        Py_RETURN_NONE; /* Serve() or whoever waits carries it out */
    if (self->serving) {
        wait_serve_over(self);
        Py_RETURN_NONE;
    }
    PyThreadState *ts = PyEval_SaveThread();
    close_dialers(self);
    int rc = zinx_server_wait(self->srv);
    PyEval_RestoreThread(ts);
    mark_stopped(self);
    if (rc != 0 && rc != ZINX_ESTATE)
        return pz_raise(rc, "Stop");
    Py_RETURN_NONE;
}

/* ---- the connection manager's reads, and dialing ------------------------- */

static PyObject *server_port(pz_server_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (check_made(self) != 0)
        return NULL;
    return PyLong_FromLong(zinx_server_port(self->srv));
}

static PyObject *server_conn_count(pz_server_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (check_made(self) != 0)
        return NULL;
    return PyLong_FromSize_t(
        zinx_connmgr_count(zinx_server_connmgr(self->srv)));
}

static PyObject *server_get_conn(pz_server_obj_t *self, PyObject *arg)
{
    if (check_made(self) != 0)
        return NULL;
    unsigned long long id = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred())
        return NULL;
    zinx_conn_t *c = zinx_connmgr_get(zinx_server_connmgr(self->srv), id);
    if (c == NULL) {
        PyErr_Format(PyExc_KeyError, "no connection %llu", id);
        return NULL;
    }
    PyObject *obj = pz_conn_wrap(c, self->max_packet);
    zinx_conn_unref(c);
    return obj;
}

static PyObject *server_conn_ids(pz_server_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (check_made(self) != 0)
        return NULL;
    zinx_connmgr_t *mgr = zinx_server_connmgr(self->srv);
    size_t cap = zinx_connmgr_count(mgr) + 64;
    uint64_t *ids = PyMem_Malloc(cap * sizeof(*ids));
    if (ids == NULL)
        return PyErr_NoMemory();
    size_t n = zinx_connmgr_ids(mgr, ids, cap);
    if (n > cap)
        n = cap; /* more came meanwhile: these are the ones listed */
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(ids[i]);
        if (v == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    PyMem_Free(ids);
    return list;
}

static int keep_dialer(pz_server_obj_t *self, zinx_dialer_t *d)
{
    pz_dialers_t *k = PyMem_RawMalloc(sizeof(*k));
    if (k == NULL)
        return -1;
    k->dialer = d;
    k->next = self->dialers;
    self->dialers = k;
    return 0;
}

static PyObject *server_dial(pz_server_obj_t *self, PyObject *args,
                             PyObject *kw)
{
    static char *names[] = {"host", "port", "timeout_ms", NULL};
    const char *host;
    int port;
    unsigned int timeout_ms = 5000;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "si|I:Dial", names, &host, &port,
                                     &timeout_ms) ||
        check_made(self) != 0)
        return NULL;
    if (pz_in_library_call()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Dial: not from a handler or hook (it waits for "
                        "the connection)");
        return NULL;
    }
    zinx_dial_opts_t opts = {.connect_timeout_ms = timeout_ms};
    zinx_dialer_t *d = NULL;
    zinx_conn_t *conn = NULL;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = zinx_server_dial(self->srv, host, port, &opts, &d);
    if (rc == 0) {
        rc = zinx_dialer_wait(d, timeout_ms + 1000, &conn);
        if (rc != 0)
            zinx_dialer_close(d);
    }
    PyEval_RestoreThread(ts);
    if (rc != 0)
        return pz_raise(rc, "Dial");
    if (keep_dialer(self, d) != 0) {
        zinx_conn_unref(conn);
        ts = PyEval_SaveThread();
        zinx_dialer_close(d);
        PyEval_RestoreThread(ts);
        return PyErr_NoMemory();
    }
    PyObject *obj = pz_conn_wrap(conn, self->max_packet);
    zinx_conn_unref(conn);
    return obj;
}

static PyObject *server_log(pz_server_obj_t *self, PyObject *args)
{
    int level;
    const char *text;
    if (!PyArg_ParseTuple(args, "is:Log", &level, &text) ||
        check_made(self) != 0)
        return NULL;
    if (level < ZINX_LOG_DEBUG || level > ZINX_LOG_ERROR) {
        PyErr_SetString(PyExc_ValueError, "a log level is 0 to 3");
        return NULL;
    }
    zinx_server_log(self->srv, (zinx_log_level_t)level, "%s", text);
    Py_RETURN_NONE;
}

static PyObject *server_is_client(pz_server_obj_t *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->client);
}

static PyMethodDef server_methods[] = {
    {"AddRouter", (PyCFunction)server_add_router, METH_VARARGS,
     "AddRouter(msg_id, pre, handle, post): routes msg_id to the three "
     "steps (callables taking a Request, or None), called in order on a "
     "worker thread with the GIL held for the call only."},
    {"SetOnConnStart", (PyCFunction)server_on_start, METH_O,
     "SetOnConnStart(fn): fn(connection) runs once per connection before "
     "its messages (None removes it). Before Start only."},
    {"SetOnConnStop", (PyCFunction)server_on_stop, METH_O,
     "SetOnConnStop(fn): fn(connection) runs once per connection after its "
     "last message (None removes it). Before Start only."},
    {"CallOnConnStart", (PyCFunction)server_call_start, METH_O,
     "Calls the OnConnStart hook with the connection now."},
    {"CallOnConnStop", (PyCFunction)server_call_stop, METH_O,
     "Calls the OnConnStop hook with the connection now."},
    {"Start", (PyCFunction)server_start, METH_NOARGS,
     "Binds, listens and starts the threads; returns at once."},
    {"Serve", (PyCFunction)server_serve, METH_NOARGS,
     "Starts if needed and serves until Ctrl-C (KeyboardInterrupt), "
     "SIGTERM (on the main thread) or Stop(), then stops gracefully and "
     "returns. An exception raised by a signal handler meanwhile also stops "
     "the server and is raised once the stop is over."},
    {"Stop", (PyCFunction)server_stop, METH_NOARGS,
     "Stops gracefully (replies flushed, OnConnStop for every connection). "
     "From a handler or hook it asks for the stop and returns."},
    {"GetPort", (PyCFunction)server_port, METH_NOARGS,
     "The bound TCP port (the real one when TCPPort is 0)."},
    {"GetConnCount", (PyCFunction)server_conn_count, METH_NOARGS,
     "Open connections."},
    {"GetConn", (PyCFunction)server_get_conn, METH_O,
     "GetConn(conn_id): the Connection; KeyError when there is none."},
    {"GetConnIDs", (PyCFunction)server_conn_ids, METH_NOARGS,
     "The IDs of the open connections."},
    {"Dial", (PyCFunction)(void (*)(void))server_dial,
     METH_VARARGS | METH_KEYWORDS,
     "Dial(host, port, timeout_ms=5000): connects and returns the "
     "Connection, served by this endpoint's routers and hooks."},
    {"Log", (PyCFunction)server_log, METH_VARARGS,
     "Log(level, text): writes through the server's log (0 debug .. 3 "
     "error)."},
    {"IsClient", (PyCFunction)server_is_client, METH_NOARGS,
     "Whether this endpoint was made as a client."},
    {NULL, NULL, 0, NULL}};

PyTypeObject pz_server_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_zinx.Server",
    .tp_basicsize = sizeof(pz_server_obj_t),
    .tp_dealloc = (destructor)server_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Server(overrides='{}', client=False): a Zinx server (or a "
              "client endpoint) configured by conf/zinx.json and overrides.",
    .tp_methods = server_methods,
    .tp_init = (initproc)server_init,
    .tp_new = PyType_GenericNew,
};
