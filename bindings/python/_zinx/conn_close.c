/*
 * Connection close callbacks from Python (Zinx's AddCloseCallback).
 *
 * The callables live in one dict per connection, {(handler, key):
 * callback}, kept as a property: a dict keeps insertion order and a
 * replaced entry keeps its place, as Zinx does since PR #388, and pairs
 * compare by Python equality (Zinx compares interface values), not by
 * identity. One library close callback per connection runs them; the
 * dict, and the closures with it, is released with the properties, so
 * they live exactly as long as the connection.
 */
#include "pyzinx.h" /* Python.h first, as Python asks */

#include <stdio.h>

#define CLOSE_KEY PZ_RESERVED_PREFIX "close"

/* The owner under which the library holds the connection's one close
   callback of this module: the address of a constant, never written. */
static const char close_owner = 0;

static void run_callbacks(zinx_conn_t *conn, const void *owner, const void *key,
                          void *udata)
{
    (void)owner;
    (void)key;
    (void)udata;
    pz_call_t *call = pz_call_begin();
    void *kept;
    PyObject *fns = NULL;
    if (zinx_conn_get_property(conn, CLOSE_KEY, &kept) == 0)
        fns = PyDict_Values((PyObject *)kept); /* callbacks may edit it */
    for (Py_ssize_t i = 0; fns != NULL && i < PyList_GET_SIZE(fns); i++) {
        PyObject *res = PyObject_CallNoArgs(PyList_GET_ITEM(fns, i));
        if (res == NULL) {
            char where[96];
            snprintf(where, sizeof(where), "a close callback (connection %llu)",
                     (unsigned long long)zinx_conn_id(conn));
            pz_log_exception(zinx_conn_server(conn), where);
        }
        Py_XDECREF(res);
    }
    if (fns == NULL && PyErr_Occurred())
        pz_log_exception(zinx_conn_server(conn), "the close callbacks");
    Py_XDECREF(fns);
    pz_call_end(call);
}

/* The connection's dict of callbacks (borrowed: the connection keeps
   it), made and registered on first use; NULL with an exception set. */
static PyObject *callbacks_of(pz_conn_obj_t *self)
{
    void *kept;
    if (zinx_conn_get_property(self->conn, CLOSE_KEY, &kept) == 0)
        return kept;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    int rc = zinx_conn_set_property(self->conn, CLOSE_KEY, d, pz_release_value);
    if (rc != 0) {
        Py_DECREF(d);
        pz_raise(rc, "AddCloseCallback");
        return NULL;
    }
    rc = zinx_conn_add_close_callback(self->conn, &close_owner, NULL,
                                      run_callbacks, NULL);
    if (rc != 0) { /* the dict goes with the properties */
        pz_raise(rc, "AddCloseCallback");
        return NULL;
    }
    return d;
}

PyObject *pz_conn_add_close_callback(pz_conn_obj_t *self, PyObject *args)
{
    PyObject *handler, *key, *fn;
    if (!PyArg_ParseTuple(args, "OOO:AddCloseCallback", &handler, &key, &fn))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "the callback must be callable");
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, handler, key);
    if (pair == NULL)
        return NULL;
    PyObject *d = callbacks_of(self);
    int rc = d != NULL ? PyDict_SetItem(d, pair, fn) : -1;
    Py_DECREF(pair);
    if (rc != 0)
        return NULL;
    Py_RETURN_NONE;
}

PyObject *pz_conn_remove_close_callback(pz_conn_obj_t *self, PyObject *args)
{
    PyObject *handler, *key;
    if (!PyArg_ParseTuple(args, "OO:RemoveCloseCallback", &handler, &key))
        return NULL;
    void *kept;
    if (zinx_conn_get_property(self->conn, CLOSE_KEY, &kept) != 0)
        Py_RETURN_NONE;
    PyObject *pair = PyTuple_Pack(2, handler, key);
    if (pair == NULL)
        return NULL;
    int rc = PyDict_DelItem((PyObject *)kept, pair);
    Py_DECREF(pair);
    if (rc != 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError))
            return NULL;
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}
