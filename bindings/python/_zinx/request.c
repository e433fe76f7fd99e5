/*
 * Request: the message a Python router is called with.
 *
 * The library's request and its payload are valid only during the
 * handler call, so the object reads them lazily and keeps what it read:
 * GetData() after the handler returned gives the bytes read during it,
 * or raises if they were never read.
 */
#include "pyzinx.h"

pz_request_obj_t *pz_request_new(zinx_request_t *req, uint32_t max_packet)
{
    /* The thread's last Request, when nobody kept it: one allocation
       less per message. */
    pz_request_obj_t *r = (pz_request_obj_t *)pz_call_take_spare();
    if (r == NULL)
        r = PyObject_New(pz_request_obj_t, &pz_request_type);
    if (r == NULL)
        return NULL;
    r->req = req;
    r->conn = NULL;
    r->data = NULL;
    r->msg_id = zinx_request_msg_id(req);
    r->max_packet = max_packet;
    r->aborted = 0;
    return r;
}

void pz_request_end(pz_request_obj_t *r)
{
    r->req = NULL;
    if (Py_REFCNT(r) != 1) { /* kept by the program: stays as it is */
        Py_DECREF(r);
        return;
    }
    Py_CLEAR(r->conn);
    Py_CLEAR(r->data);
    pz_call_put_spare((PyObject *)r);
}

static void request_dealloc(pz_request_obj_t *self)
{
    Py_XDECREF(self->conn);
    Py_XDECREF(self->data);
    PyObject_Free(self);
}

static PyObject *request_conn(pz_request_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (self->conn == NULL) {
        if (self->req == NULL) {
            PyErr_SetString(PyExc_RuntimeError,
                            "GetConnection: the request's handler has "
                            "returned (keep the connection, not the request)");
            return NULL;
        }
        self->conn =
            pz_conn_wrap(zinx_request_conn(self->req), self->max_packet);
        if (self->conn == NULL)
            return NULL;
    }
    return Py_NewRef(self->conn);
}

static PyObject *request_data(pz_request_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (self->data == NULL) {
        if (self->req == NULL) {
            PyErr_SetString(PyExc_RuntimeError,
                            "GetData: the request's handler has returned "
                            "(keep the bytes, not the request)");
            return NULL;
        }
        self->data = PyBytes_FromStringAndSize(
            (const char *)zinx_request_data(self->req),
            (Py_ssize_t)zinx_request_data_len(self->req));
        if (self->data == NULL)
            return NULL;
    }
    return Py_NewRef(self->data);
}

static PyObject *request_msg_id(pz_request_obj_t *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLong(self->msg_id);
}

static PyObject *request_data_len(pz_request_obj_t *self, PyObject *unused)
{
    (void)unused;
    if (self->data != NULL)
        return PyLong_FromSsize_t(PyBytes_GET_SIZE(self->data));
    if (self->req == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "GetDataLen: the request's handler has returned");
        return NULL;
    }
    return PyLong_FromUnsignedLong(zinx_request_data_len(self->req));
}

static PyObject *request_abort(pz_request_obj_t *self, PyObject *unused)
{
    (void)unused;
    self->aborted = 1;
    Py_RETURN_NONE;
}

static PyObject *request_is_aborted(pz_request_obj_t *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->aborted);
}

static PyMethodDef request_methods[] = {
    {"GetConnection", (PyCFunction)request_conn, METH_NOARGS,
     "The connection the message came on."},
    {"GetData", (PyCFunction)request_data, METH_NOARGS,
     "The payload, as bytes."},
    {"GetMsgID", (PyCFunction)request_msg_id, METH_NOARGS, "The message ID."},
    {"GetDataLen", (PyCFunction)request_data_len, METH_NOARGS,
     "The payload's length."},
    {"Abort", (PyCFunction)request_abort, METH_NOARGS,
     "No later step of the router (Handle, PostHandle) runs for this "
     "message."},
    {"IsAborted", (PyCFunction)request_is_aborted, METH_NOARGS,
     "Whether Abort() was called."},
    {NULL, NULL, 0, NULL}};

PyTypeObject pz_request_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_zinx.Request",
    .tp_basicsize = sizeof(pz_request_obj_t),
    .tp_dealloc = (destructor)request_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One message handed to a router (made by the server).",
    .tp_methods = request_methods,
};
