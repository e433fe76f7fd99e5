/*
 * Zinx for C: a TCP server framework for long-lived connections.
 *
 * Include this one header. The pieces, each documented in its own file:
 *   zinx/error.h    error codes and zinx_strerror()
 *   zinx/log.h      log levels and sinks
 *   zinx/pack.h     the wire format (pure pack/unpack)
 *   zinx/config.h   zinx.json keys and defaults
 *   zinx/router.h   routers and requests
 *   zinx/conn.h     connections: send, close, properties, lifetime
 *   zinx/connmgr.h  the connection manager
 *   zinx/server.h   the server and its lifecycle
 *   zinx/client.h   outgoing connections and a blocking helper
 *   zinx/interceptor.h  code that sees each message before routing
 */
#ifndef ZINX_H
#define ZINX_H

#define ZINX_VERSION_MAJOR 0
#define ZINX_VERSION_MINOR 2
#define ZINX_VERSION_PATCH 0
#define ZINX_VERSION_STRING "0.2.0"

#include "zinx/error.h"
#include "zinx/log.h"
#include "zinx/pack.h"
#include "zinx/config.h"
#include "zinx/router.h"
#include "zinx/conn.h"
#include "zinx/connmgr.h"
#include "zinx/server.h"
#include "zinx/client.h"
#include "zinx/timer.h"
#include "zinx/interceptor.h"
#include "zinx/codec.h"
#include "zinx/tls.h"
#include "zinx/websocket.h"
#include "zinx/metrics.h"

#endif /* ZINX_H */
