/*
 * Connection: the Python face of one zinx_conn_t.
 *
 * The object is kept in the connection's own properties under WRAP_KEY,
 * so every handler and hook of the connection gets the same object, and
 * whatever the program hangs on it lives as long as the connection. User
 * properties hold a reference to their Python value; the library drops
 * it (with the GIL, below) when the value is replaced or removed, or
 * when the properties are released after OnConnStop.
 */
#include "pyzinx.h" /* Python.h first, as Python asks */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define RESERVED_PREFIX PZ_RESERVED_PREFIX
#define WRAP_KEY RESERVED_PREFIX "conn"

/* A property's value was let go by the library: drop our reference. */
void pz_release_value(void *value)
{
    if (_Py_IsFinalizing())
        return; /* too late to run Python code: let it go with the process */
    PyGILState_STATE s = PyGILState_Ensure();
    Py_DECREF((PyObject *)value);
    PyGILState_Release(s);
}

/*
 * The connection's user data (zinx_conn_data) points at its Connection
 * object while the property keeps it: a pointer read per message instead
 * of a property lookup by name. The binding owns the user data of the
 * connections of its servers (Python code cannot reach it). It is read
 * and written with the GIL held only, which is all the synchronisation it
 * needs; it is cleared before the property's reference is dropped.
 */
static void release_wrapper(void *value)
{
    if (_Py_IsFinalizing())
        return; /* too late to run Python code: let it go with the process */
    PyGILState_STATE s = PyGILState_Ensure();
    pz_conn_obj_t *self = value;
    if (zinx_conn_data(self->conn) == self)
        zinx_conn_set_data(self->conn, NULL);
    Py_DECREF(self);
    PyGILState_Release(s);
}

PyObject *pz_conn_wrap(zinx_conn_t *conn, uint32_t max_packet)
{
    PyObject *known = zinx_conn_data(conn);
    if (known != NULL)
        return Py_NewRef(known);
    void *kept;
    if (zinx_conn_get_property(conn, WRAP_KEY, &kept) == 0)
        return Py_NewRef((PyObject *)kept);
    pz_conn_obj_t *self = PyObject_New(pz_conn_obj_t, &pz_conn_type);
    if (self == NULL)
        return NULL;
    self->conn = zinx_conn_ref(conn);
    self->id = zinx_conn_id(conn);
    self->max_packet = max_packet;
    /* Kept while the connection lives; once its properties are released
       (it ended) the object is simply not kept. */
    Py_INCREF(self);
    if (zinx_conn_set_property(conn, WRAP_KEY, self, release_wrapper) != 0)
        Py_DECREF(self);
    else
        zinx_conn_set_data(conn, self);
    return (PyObject *)self;
}

static void conn_dealloc(pz_conn_obj_t *self)
{
    zinx_conn_unref(self->conn);
    PyObject_Free(self);
}

static PyObject *conn_repr(pz_conn_obj_t *self)
{
    return PyUnicode_FromFormat("<znet Connection %llu %s>",
                                (unsigned long long)self->id,
                                zinx_conn_remote_addr(self->conn));
}

static PyObject *conn_get_id(pz_conn_obj_t *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->id);
}

/* A message ID from Python: 0 .. 2^32 - 1. Returns 0 or -1. */
static int parse_msg_id(PyObject *o, uint32_t *id)
{
    unsigned long v = PyLong_Check(o) ? PyLong_AsUnsignedLong(o) : ULONG_MAX;
    if (v > UINT32_MAX) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "a message ID is an int from 0 to 4294967295");
        return -1;
    }
    *id = (uint32_t)v;
    return 0;
}

static PyObject *send_now(pz_conn_obj_t *self, uint32_t id, const void *data,
                          uint32_t len)
{
    PyThreadState *ts = PyEval_SaveThread();
    int rc = zinx_conn_send_msg(self->conn, id, data, len);
    PyEval_RestoreThread(ts);
    if (rc != 0)
        return pz_raise(rc, "SendMsg");
    Py_RETURN_NONE;
}

/* Sends (or queues) data[0..len) after the checks that can be made now. */
static PyObject *send_checked(pz_conn_obj_t *self, uint32_t id,
                              const void *data, Py_ssize_t len)
{
    if ((uint64_t)len > self->max_packet) {
        PyErr_Format(PyExc_ValueError,
                     "SendMsg: %zd bytes is more than MaxPacketSize (%u)", len,
                     self->max_packet);
        return NULL;
    }
    if (!zinx_conn_can_send(self->conn))
        return pz_raise(ZINX_ECLOSED, "SendMsg");
    int queued = pz_call_queue_send(self->conn, id, data, (uint32_t)len);
    if (queued < 0)
        return NULL;
    return queued ? Py_NewRef(Py_None)
                  : send_now(self, id, data, (uint32_t)len);
}

/* SendMsg(msg_id, data): a fast call, and bytes read in place; any other
   bytes-like object through the buffer protocol. */
static PyObject *conn_send(pz_conn_obj_t *self, PyObject *const *args,
                           Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "SendMsg takes a message ID and the data");
        return NULL;
    }
    uint32_t id;
    if (parse_msg_id(args[0], &id) != 0)
        return NULL;
    if (PyBytes_CheckExact(args[1]))
        return send_checked(self, id, PyBytes_AS_STRING(args[1]),
                            PyBytes_GET_SIZE(args[1]));
    Py_buffer data;
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) != 0)
        return NULL;
    PyObject *result = send_checked(self, id, data.buf, data.len);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *conn_stop(pz_conn_obj_t *self, PyObject *unused)
{
    (void)unused;
    int queued = pz_call_queue_close(self->conn);
    if (queued < 0)
        return NULL;
    if (!queued) {
        PyThreadState *ts = PyEval_SaveThread();
        (void)zinx_conn_close(self->conn);
        PyEval_RestoreThread(ts);
    }
    Py_RETURN_NONE;
}

static PyObject *conn_is_alive(pz_conn_obj_t *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(zinx_conn_is_open(self->conn));
}

/* A user property key: a str, not in the module's own name space. */
static const char *user_key(PyObject *key)
{
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "a property key is a str");
        return NULL;
    }
    const char *k = PyUnicode_AsUTF8(key);
    if (k != NULL &&
        strncmp(k, RESERVED_PREFIX, sizeof(RESERVED_PREFIX) - 1) == 0) {
        PyErr_Format(PyExc_ValueError,
                     "property keys starting with %s are "
                     "the binding's own",
                     RESERVED_PREFIX);
        return NULL;
    }
    return k;
}

static PyObject *conn_set_property(pz_conn_obj_t *self, PyObject *args)
{
    PyObject *key, *value;
    if (!PyArg_ParseTuple(args, "OO:SetProperty", &key, &value))
        return NULL;
    const char *k = user_key(key);
    if (k == NULL)
        return NULL;
    Py_INCREF(value);
    int rc = zinx_conn_set_property(self->conn, k, value, pz_release_value);
    if (rc != 0) {
        Py_DECREF(value);
        return pz_raise(rc, "SetProperty");
    }
    Py_RETURN_NONE;
}

static PyObject *conn_get_property(pz_conn_obj_t *self, PyObject *key)
{
    const char *k = user_key(key);
    if (k == NULL)
        return NULL;
    void *value;
    if (zinx_conn_get_property(self->conn, k, &value) != 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    /* Still ours: a release waits for the GIL we hold. */
    return Py_NewRef((PyObject *)value);
}

static PyObject *conn_remove_property(pz_conn_obj_t *self, PyObject *key)
{
    const char *k = user_key(key);
    if (k == NULL)
        return NULL;
    if (zinx_conn_remove_property(self->conn, k) != 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* "1.2.3.4:5678", "[::1]:5678" or a Unix path as (host, port); a path
   has port 0. */
static PyObject *split_addr(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (s[0] == '/' || colon == NULL)
        return Py_BuildValue("(si)", s, 0);
    const char *host = s;
    size_t host_len = (size_t)(colon - s);
    if (host[0] == '[' && host_len >= 2 && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    return Py_BuildValue("(s#i)", host, (Py_ssize_t)host_len, atoi(colon + 1));
}

static PyObject *conn_remote_addr(pz_conn_obj_t *self, PyObject *unused)
{
    (void)unused;
    return split_addr(zinx_conn_remote_addr(self->conn));
}

static PyObject *conn_local_addr(pz_conn_obj_t *self, PyObject *unused)
{
    (void)unused;
    return split_addr(zinx_conn_local_addr(self->conn));
}

static PyObject *conn_remote_addr_string(pz_conn_obj_t *self, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(zinx_conn_remote_addr(self->conn));
}

static PyMethodDef conn_methods[] = {
    {"GetConnID", (PyCFunction)conn_get_id, METH_NOARGS,
     "The connection's ID, unique within its server."},
    {"SendMsg", (PyCFunction)(void (*)(void))conn_send, METH_FASTCALL,
     "SendMsg(msg_id, data): frames data (bytes-like, copied) as message "
     "msg_id and sends it. Inside a handler or hook the send is carried out "
     "when the call returns, in order; raises ValueError above "
     "MaxPacketSize, ConnectionError once the connection ended."},
    {"SendBuffMsg", (PyCFunction)(void (*)(void))conn_send, METH_FASTCALL,
     "The same as SendMsg (every send is buffered here)."},
    {"Stop", (PyCFunction)conn_stop, METH_NOARGS,
     "Closes gracefully: replies already sent are flushed first. "
     "Idempotent."},
    {"IsAlive", (PyCFunction)conn_is_alive, METH_NOARGS,
     "True while open and not closing."},
    {"SetProperty", (PyCFunction)conn_set_property, METH_VARARGS,
     "SetProperty(key, value): keeps value (any object) under key until "
     "replaced, removed, or the connection ends."},
    {"GetProperty", (PyCFunction)conn_get_property, METH_O,
     "GetProperty(key): the value under key; KeyError when there is none."},
    {"RemoveProperty", (PyCFunction)conn_remove_property, METH_O,
     "RemoveProperty(key): drops the value under key; KeyError when none."},
    {"RemoteAddr", (PyCFunction)conn_remote_addr, METH_NOARGS,
     "The peer's address as (host, port)."},
    {"GetRemoteAddr", (PyCFunction)conn_remote_addr, METH_NOARGS,
     "The same as RemoteAddr."},
    {"RemoteAddrString", (PyCFunction)conn_remote_addr_string, METH_NOARGS,
     "The peer's address as 'host:port' ('[v6]:port' for IPv6)."},
    {"LocalAddr", (PyCFunction)conn_local_addr, METH_NOARGS,
     "The local address as (host, port)."},
    {"AddCloseCallback", (PyCFunction)pz_conn_add_close_callback, METH_VARARGS,
     "AddCloseCallback(handler, key, callback): callback() runs once when "
     "the connection ends, right after OnConnStop, in the order added; the "
     "same (handler, key) again replaces the callback and keeps its place. "
     "The connection keeps callback until then."},
    {"RemoveCloseCallback", (PyCFunction)pz_conn_remove_close_callback,
     METH_VARARGS,
     "RemoveCloseCallback(handler, key): that callback will not run (no "
     "error when there is none)."},
    {NULL, NULL, 0, NULL}};

PyTypeObject pz_conn_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_zinx.Connection",
    .tp_basicsize = sizeof(pz_conn_obj_t),
    .tp_dealloc = (destructor)conn_dealloc,
    .tp_repr = (reprfunc)conn_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A connection (made by the server or a client, never by hand).",
    .tp_methods = conn_methods,
};
