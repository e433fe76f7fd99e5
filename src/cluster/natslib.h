/*
 * libnats, opened at run time. A program links libzinx without libnats
 * (no DT_NEEDED entry): the library is loaded by the first server that
 * joins a cluster, and its functions are reached through this table,
 * whose types come from nats.h at build time so that a call cannot
 * disagree with the library's declaration.
 */
#ifndef ZINX_CLUSTER_NATSLIB_H
#define ZINX_CLUSTER_NATSLIB_H

#include <nats/nats.h>

/* The SONAME of Debian's libnats3.4 (libnats-dev 3.4). */
#define ZINX__NATS_SONAME "libnats.so.3.4"

#define ZINX__NATS_FUNCS(XX)                    \
    XX(natsOptions_Create)                      \
    XX(natsOptions_Destroy)                     \
    XX(natsOptions_SetURL)                      \
    XX(natsOptions_SetName)                     \
    XX(natsOptions_SetTimeout)                  \
    XX(natsOptions_SetPingInterval)             \
    XX(natsOptions_SetMaxPingsOut)              \
    XX(natsOptions_SetAllowReconnect)           \
    XX(natsOptions_SetMaxReconnect)             \
    XX(natsOptions_SetReconnectWait)            \
    XX(natsOptions_SetReconnectBufSize)         \
    XX(natsOptions_SetErrorHandler)             \
    XX(natsOptions_SetClosedCB)                 \
    XX(natsOptions_SetDisconnectedCB)           \
    XX(natsOptions_SetReconnectedCB)            \
    XX(natsOptions_SetNoEcho)                   \
    XX(natsOptions_SetSendAsap)                 \
    XX(natsConnection_Connect)                  \
    XX(natsConnection_Close)                    \
    XX(natsConnection_Destroy)                  \
    XX(natsConnection_Publish)                  \
    XX(natsConnection_Request)                  \
    XX(natsConnection_Subscribe)                \
    XX(natsConnection_FlushTimeout)             \
    XX(natsConnection_GetMaxPayload)            \
    XX(natsSubscription_SetPendingLimits)       \
    XX(natsSubscription_GetPending)             \
    XX(natsSubscription_GetDropped)             \
    XX(natsSubscription_Drain)                  \
    XX(natsSubscription_WaitForDrainCompletion) \
    XX(natsSubscription_Destroy)                \
    XX(natsMsg_GetData)                         \
    XX(natsMsg_GetDataLength)                   \
    XX(natsMsg_GetReply)                        \
    XX(natsMsg_Destroy)                         \
    XX(natsStatus_GetText)

typedef struct zinx__nats {
#define ZINX__NATS_FIELD(name) __typeof__(name) *name;
    ZINX__NATS_FUNCS(ZINX__NATS_FIELD)
#undef ZINX__NATS_FIELD
} zinx__nats_t;

/*
 * Opens libnats once per process and returns its table, or NULL with
 * *why set to dlerror()'s text (the library or a function is missing).
 * The library stays loaded until the process ends: its threads may
 * outlive any one connection. Thread: any.
 */
const zinx__nats_t *zinx__nats_open(const char **why);

#endif /* ZINX_CLUSTER_NATSLIB_H */
