/* Loading libnats at run time (see natslib.h). */
#include <dlfcn.h>
#include <pthread.h>

#include "cluster/natslib.h"

/*
 * The one piece of process-wide state of the cluster: a dynamic library
 * is loaded once per process whatever the number of servers, so the
 * table that points into it is too. Written once under pthread_once,
 * read-only after.
 */
static struct {
    pthread_once_t once;
    zinx__nats_t api;
    const char *why; /* NULL when the table is complete */
} loaded = {.once = PTHREAD_ONCE_INIT};

static void load(void)
{
    /* RTLD_LOCAL: libnats's symbols stay out of the program's namespace;
       RTLD_NODELETE: it is never unmapped under its own threads. */
    void *h = dlopen(ZINX__NATS_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        loaded.why = dlerror();
        return;
    }
#define ZINX__NATS_RESOLVE(name)                                   \
    if ((*(void **)&loaded.api.name = dlsym(h, #name)) == NULL) {  \
        loaded.why = "libnats " ZINX__NATS_SONAME " lacks " #name; \
        return;                                                    \
    }
    ZINX__NATS_FUNCS(ZINX__NATS_RESOLVE)
#undef ZINX__NATS_RESOLVE
}

const zinx__nats_t *zinx__nats_open(const char **why)
{
    pthread_once(&loaded.once, load);
    *why = loaded.why;
    return loaded.why == NULL ? &loaded.api : NULL;
}
