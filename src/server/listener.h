/* The server's listening socket (listener.c). */
#ifndef ZINX_SERVER_LISTENER_H
#define ZINX_SERVER_LISTENER_H

#include "internal.h"

typedef struct zinx__listener zinx__listener_t;

/* What one listener serves: its port, where the port it got is noted,
   and the layers its connections get (TCPPort's plain or TLS sockets,
   WsPort's WebSocket ones). */
typedef struct zinx__listen_spec {
    const char *what; /* "TCP", "WebSocket": for the log */
    int port;         /* 0: a free one */
    atomic_int *bound_port;
    const struct zinx__stack_spec *stack; /* kept by the server */
} zinx__listen_spec_t;

/* Binds and listens on the server's Host and spec's port (or Unix socket
   path), recording the bound address in the server and the port in
   spec->bound_port. Returns 0 or a negative ZINX_E* code. Thread: the
   one starting the server. */
int zinx__listener_open(zinx_server_t *server, const zinx__listen_spec_t *spec,
                        zinx__listener_t **out);
/* After the server's loops are made, before they start: accept on loop 0,
   or with ReusePort "loops" bind one more socket per further loop (on the
   port the first got) and accept on every loop, each keeping its
   connections. Returns 0 or a negative ZINX_E* code. Thread: the one
   starting the server. */
int zinx__listener_start(zinx__listener_t *l);
/* Any thread but the loops': close the listening sockets, each on its
   loop, and wait until that is done. With ReusePort, and unless the
   kernel moves them to another listener of the port (tcp_migrate_req),
   the connections still queued are accepted first and drained with the
   rest instead of being reset. */
void zinx__listener_stop(zinx__listener_t *l);
/* After the loops are gone (or never ran): close and free. A Unix socket
   file the listener made is removed if it is still the same file. */
void zinx__listener_free(zinx__listener_t *l);

#endif /* ZINX_SERVER_LISTENER_H */
