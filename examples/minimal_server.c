/* Minimal echo server on port 8999 (README). Run: ./bin/zinx-minimal */
#include <zinx.h>

static void on_echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

int main(void)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg); /* 0.0.0.0:8999, tlv frames */
    zinx_server_t *server = zinx_server_new(&cfg);
    if (server == NULL)
        return 1;
    zinx_router_t echo = {.handle = on_echo};
    zinx_server_add_router(server, 1, &echo); /* message ID 1 */
    int rc = zinx_server_serve(server);       /* until Ctrl-C or SIGTERM */
    zinx_server_free(server);
    return rc == 0 ? 0 : 1;
}
