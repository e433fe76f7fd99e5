/*
 * Calling Python from the library's threads.
 *
 * The GIL. A worker thread that runs Python handlers keeps one Python
 * thread state for its whole life ("pinned"): PyGILState_Ensure() alone
 * would make and destroy one for every message. The state is dropped by
 * a thread-exit destructor when the library's thread ends.
 *
 * Queued sends. SendMsg and Stop inside a handler or hook are written
 * into the thread's queue, in call order, and carried out by
 * pz_call_end() after the GIL is released, so a Python handler never
 * holds the GIL while the library frames, queues or wakes an I/O thread,
 * and a worker takes the GIL once per message. A handler that queues a
 * lot (over FLUSH_AT bytes) has its queue carried out at once, with the
 * GIL released for it, so the queue stays bounded.
 */
#include "pyzinx.h" /* Python.h first, as Python asks */

#include <pthread.h>
#include <string.h>

#define FLUSH_AT (64u * 1024u)
#define INLINE_BYTES 1024u

enum op_kind { OP_SEND, OP_CLOSE };

/* One queued operation; a send's payload follows it, padded to 8. */
typedef struct pz_op {
    zinx_conn_t *conn; /* a reference, dropped once carried out */
    uint32_t id;
    uint32_t len;
    uint32_t kind;
    uint32_t pad_;
} pz_op_t;

struct pz_call {
    int depth;            /* nested begins on this thread */
    int pinned;           /* this thread keeps a Python thread state */
    PyThreadState *ts;    /* that state, once pinned */
    PyObject *spare;      /* see pz_call_take_spare() */
    PyGILState_STATE gil; /* of the outermost begin */
    unsigned char *ops;   /* inline_buf, or a larger heap block */
    size_t len;
    size_t cap;
    _Alignas(8) unsigned char inline_buf[INLINE_BYTES];
};

/* Per thread, by nature: each library thread has its own call and
   queue, so no lock is needed and nothing is shared. */
static _Thread_local struct pz_call tl_call;

static pthread_key_t unpin_key;
static pthread_once_t unpin_once = PTHREAD_ONCE_INIT;

/*
 * At the end of a pinned thread: gives its Python thread state back. The
 * state is the one saved at pin time: by now the C library may already
 * have cleared the interpreter's own per-thread slot (key destructors run
 * in no set order), so PyGILState calls cannot find it.
 */
static void unpin(void *arg)
{
    struct pz_call *c = arg;
    if (c->ts == NULL || !Py_IsInitialized() || _Py_IsFinalizing())
        return; /* the interpreter is gone or going: nothing to give */
    PyEval_RestoreThread(c->ts);
    Py_CLEAR(c->spare);
    PyThreadState_Clear(c->ts);
    PyThreadState_DeleteCurrent(); /* and the GIL with it */
    c->ts = NULL;
    c->pinned = 0;
}

static void make_unpin_key(void)
{
    (void)pthread_key_create(&unpin_key, unpin);
}

static void pin(struct pz_call *c)
{
    (void)PyGILState_Ensure(); /* a second count keeps the state */
    c->pinned = 1;
    c->ts = PyThreadState_Get();
    pthread_once(&unpin_once, make_unpin_key);
    (void)pthread_setspecific(unpin_key, c);
}

pz_call_t *pz_call_begin(void)
{
    struct pz_call *c = &tl_call;
    if (c->depth++ > 0)
        return c;
    c->gil = PyGILState_Ensure();
    if (!c->pinned)
        pin(c);
    c->ops = c->inline_buf;
    c->len = 0;
    c->cap = sizeof(c->inline_buf);
    return c;
}

PyObject *pz_call_take_spare(void)
{
    PyObject *obj = tl_call.spare;
    tl_call.spare = NULL;
    return obj;
}

void pz_call_put_spare(PyObject *obj)
{
    if (tl_call.spare == NULL && tl_call.pinned)
        tl_call.spare = obj;
    else
        Py_DECREF(obj);
}

int pz_in_library_call(void)
{
    return tl_call.depth > 0;
}

static size_t op_size(uint32_t len)
{
    return sizeof(pz_op_t) + (((size_t)len + 7u) & ~(size_t)7u);
}

/* Carries out and forgets every queued operation. Without the GIL. */
static void run_ops(struct pz_call *c)
{
    size_t at = 0;
    while (at < c->len) {
        pz_op_t *op = (pz_op_t *)(c->ops + at);
        if (op->kind == OP_SEND)
            (void)zinx_conn_send_msg(op->conn, op->id, op + 1, op->len);
        else
            (void)zinx_conn_close(op->conn);
        zinx_conn_unref(op->conn);
        at += op_size(op->len);
    }
    c->len = 0;
}

static void release_ops(struct pz_call *c)
{
    if (c->ops != c->inline_buf)
        PyMem_RawFree(c->ops);
    c->ops = c->inline_buf;
    c->cap = sizeof(c->inline_buf);
}

void pz_call_end(pz_call_t *call)
{
    struct pz_call *c = call;
    if (--c->depth > 0)
        return;
    PyGILState_Release(c->gil);
    run_ops(c);
    release_ops(c);
}

/* Room for one more op of len payload bytes. Returns 0 or -1. */
static int reserve(struct pz_call *c, size_t need)
{
    if (c->len + need <= c->cap)
        return 0;
    size_t cap = c->cap * 2;
    while (cap < c->len + need)
        cap *= 2;
    unsigned char *p = PyMem_RawMalloc(cap);
    if (p == NULL)
        return -1;
    memcpy(p, c->ops, c->len);
    if (c->ops != c->inline_buf)
        PyMem_RawFree(c->ops);
    c->ops = p;
    c->cap = cap;
    return 0;
}

static int queue_op(zinx_conn_t *conn, uint32_t kind, uint32_t id,
                    const void *data, uint32_t len)
{
    struct pz_call *c = &tl_call;
    if (c->depth == 0)
        return 0;
    if (reserve(c, op_size(len)) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    pz_op_t *op = (pz_op_t *)(c->ops + c->len);
    op->conn = zinx_conn_ref(conn);
    op->id = id;
    op->len = len;
    op->kind = kind;
    op->pad_ = 0;
    if (len > 0)
        memcpy(op + 1, data, len);
    c->len += op_size(len);
    if (c->len >= FLUSH_AT) {
        PyThreadState *ts = PyEval_SaveThread();
        run_ops(c);
        PyEval_RestoreThread(ts);
    }
    return 1;
}

int pz_call_queue_send(zinx_conn_t *conn, uint32_t id, const void *data,
                       uint32_t len)
{
    return queue_op(conn, OP_SEND, id, data, len);
}

int pz_call_queue_close(zinx_conn_t *conn)
{
    return queue_op(conn, OP_CLOSE, 0, NULL, 0);
}

/* The text of the set exception with its traceback (a new reference),
   or NULL (nothing set) when it cannot be formatted. */
static PyObject *format_exception(PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *mod = PyImport_ImportModule("traceback");
    PyObject *lines =
        mod != NULL ? PyObject_CallMethod(mod, "format_exception", "OOO", type,
                                          value != NULL ? value : Py_None,
                                          tb != NULL ? tb : Py_None)
                    : NULL;
    Py_XDECREF(mod);
    if (lines == NULL)
        return NULL;
    PyObject *empty = PyUnicode_FromString("");
    PyObject *text = empty != NULL ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    return text;
}

void pz_log_exception(zinx_server_t *srv, const char *where)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *text = format_exception(type, value, tb);
    const char *utf8 = text != NULL ? PyUnicode_AsUTF8(text) : NULL;
    if (utf8 != NULL) {
        size_t n = strlen(utf8);
        while (n > 0 && utf8[n - 1] == '\n')
            n--;
        zinx_server_log(srv, ZINX_LOG_ERROR, "Python exception in %s:\n%.*s",
                        where, (int)n, utf8);
    } else {
        PyErr_Clear();
        zinx_server_log(srv, ZINX_LOG_ERROR,
                        "Python exception in %s (its traceback could not be "
                        "formatted)",
                        where);
    }
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

PyObject *pz_raise(int rc, const char *what)
{
    PyObject *kind;
    switch (rc) {
    case ZINX_ECLOSED:
    case ZINX_ECONNRESET:
    case ZINX_ECONNREFUSED:
    case ZINX_ECONNABORTED:
    case ZINX_EPIPE:
        kind = PyExc_ConnectionError;
        break;
    case ZINX_EMSGSIZE:
    case ZINX_EINVAL:
    case ZINX_ECONFIG:
    case ZINX_EEXIST:
        kind = PyExc_ValueError;
        break;
    case ZINX_ENOENT:
        kind = PyExc_KeyError;
        break;
    case ZINX_ENOMEM:
        return PyErr_NoMemory();
    case ZINX_ESTATE:
    case ZINX_EDEADLK:
        kind = PyExc_RuntimeError;
        break;
    case ZINX_ETIMEDOUT:
        kind = PyExc_TimeoutError;
        break;
    default:
        if (rc < 0 && rc > -4000) {
            PyObject *args = Py_BuildValue("(is)", -rc, zinx_strerror(rc));
            if (args != NULL) {
                PyErr_SetObject(PyExc_OSError, args);
                Py_DECREF(args);
            }
            return NULL;
        }
        kind = PyExc_RuntimeError;
    }
    PyErr_Format(kind, "%s: %s (%s)", what, zinx_strerror(rc),
                 zinx_err_name(rc));
    return NULL;
}
