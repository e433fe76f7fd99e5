/* Starting framework threads. */
#include <signal.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

typedef struct spawn {
    void *(*fn)(void *);
    void *arg;
    pthread_t *self;
    const char *name;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
} spawn_t;

static void *trampoline(void *p)
{
    spawn_t *s = p;
    void *(*fn)(void *) = s->fn;
    void *arg = s->arg;
    /* The thread records its own ID before anyone may compare with it, so
       "am I this loop/worker?" checks need no further synchronisation. */
    *s->self = pthread_self();
    pthread_setname_np(pthread_self(), s->name);
    pthread_mutex_lock(&s->lock);
    s->ready = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return fn(arg); /* s lives on the spawner's stack: gone from here on */
}

int zinx__thread_spawn(pthread_t *self, void *(*fn)(void *), void *arg,
                       const char *name)
{
    spawn_t s = {.fn = fn, .arg = arg, .self = self, .name = name};
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    /* Framework threads take no asynchronous signals: serve() waits for
       SIGINT/SIGTERM itself and must not lose them to a handler thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    int rc = pthread_create(&tid, NULL, trampoline, &s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        pthread_mutex_lock(&s.lock);
        while (!s.ready)
            pthread_cond_wait(&s.cond, &s.lock);
        pthread_mutex_unlock(&s.lock);
    }
    pthread_mutex_destroy(&s.lock);
    pthread_cond_destroy(&s.cond);
    return -rc;
}

int zinx__thread_start(pthread_t *out, void *(*fn)(void *), void *arg)
{
    /* As spawn: framework threads take no asynchronous signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(out, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

void zinx__thread_name_self(const char *name)
{
    pthread_setname_np(pthread_self(), name);
}

void zinx__cond_init_monotonic(pthread_cond_t *cond)
{
    /* Deadlines are CLOCK_MONOTONIC, so a wall-clock step cannot stretch
       or cut a wait. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

struct timespec zinx__deadline_ts(uint64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    return ts;
}
