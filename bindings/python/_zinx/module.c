/*
 * The module _zinx: the C core of the Python package (ziface, znet and
 * zconf are Python, on top of it). See pyzinx.h for the files.
 */
#include "pyzinx.h" /* Python.h first, as Python asks */

#include <stdio.h>
#include <string.h>

/* Warnings of the loader (unknown keys, ...) go where the library's own
   log goes before a server exists: stderr. Info records (no file) are
   left out, as Zinx prints nothing then either. */
static void config_warn(zinx_log_level_t level, const char *message,
                        void *udata)
{
    (void)udata;
    if (level >= ZINX_LOG_WARN)
        fprintf(stderr, "[zinx %s] %s\n", zinx_log_level_name(level), message);
}

int pz_config_load(zinx_config_t *cfg, const char *overrides)
{
    char err[512];
    zinx_config_default(cfg);
    int rc = zinx_config_load_default(cfg, err, sizeof(err), config_warn, NULL);
    if (rc == 0)
        rc = zinx_config_load_json(cfg, overrides, strlen(overrides),
                                   "GlobalObject", err, sizeof(err),
                                   config_warn, NULL);
    if (rc == 0)
        rc = zinx_config_validate(cfg, err, sizeof(err));
    if (rc == 0)
        return 0;
    if (rc == ZINX_ECONFIG || rc == ZINX_EINVAL)
        PyErr_SetString(PyExc_ValueError, err);
    else
        pz_raise(rc, "configuration");
    return -1;
}

static PyObject *config_json(PyObject *module, PyObject *args)
{
    (void)module;
    const char *overrides = "{}";
    if (!PyArg_ParseTuple(args, "|s:config_json", &overrides))
        return NULL;
    zinx_config_t cfg;
    if (pz_config_load(&cfg, overrides) != 0)
        return NULL;
    int n = zinx_config_to_json(&cfg, NULL, 0);
    if (n < 0)
        return pz_raise(n, "config_json");
    char *text = PyMem_Malloc((size_t)n + 1);
    if (text == NULL)
        return PyErr_NoMemory();
    (void)zinx_config_to_json(&cfg, text, (size_t)n + 1);
    PyObject *s = PyUnicode_FromStringAndSize(text, n);
    PyMem_Free(text);
    return s;
}

static PyObject *strerror_of(PyObject *module, PyObject *arg)
{
    (void)module;
    int rc = (int)PyLong_AsLong(arg);
    if (PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(zinx_strerror(rc));
}

static PyMethodDef module_methods[] = {
    {"config_json", config_json, METH_VARARGS,
     "config_json(overrides='{}'): the effective configuration (defaults, "
     "then $ZINX_CONFIG_FILE_PATH or ./conf/zinx.json, then overrides, a "
     "JSON object text) as JSON text with every key. ValueError when a "
     "key or the file is refused."},
    {"strerror", strerror_of, METH_O,
     "strerror(code): the text of a ZINX_E* code."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_zinx",
    .m_doc = "The C core of the Zinx Python API (use znet, ziface, zconf).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
    if (PyType_Ready(t) < 0)
        return -1;
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

/* What the interpreter looks up when it imports the module. */
PyMODINIT_FUNC PyInit__zinx(void);

PyMODINIT_FUNC PyInit__zinx(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (add_type(m, &pz_server_type, "Server") != 0 ||
        add_type(m, &pz_conn_type, "Connection") != 0 ||
        add_type(m, &pz_request_type, "Request") != 0 ||
        PyModule_AddIntConstant(m, "LOG_DEBUG", ZINX_LOG_DEBUG) != 0 ||
        PyModule_AddIntConstant(m, "LOG_INFO", ZINX_LOG_INFO) != 0 ||
        PyModule_AddIntConstant(m, "LOG_WARN", ZINX_LOG_WARN) != 0 ||
        PyModule_AddIntConstant(m, "LOG_ERROR", ZINX_LOG_ERROR) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
