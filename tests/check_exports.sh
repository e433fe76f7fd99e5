#!/bin/sh
# check_exports.sh NM LIBRARY: the shared library exports the public API
# (zinx_ names, a sample of which must be there) and nothing else: no
# internal zinx__ name, no other symbol.
set -eu
nm=$1
lib=$2
syms=$("$nm" -D --defined-only "$lib" | awk '{print $3}')
status=0
for want in zinx_server_new zinx_conn_send_msg zinx_strerror \
    zinx_config_validate zinx_sync_client_open; do
    if ! printf '%s\n' "$syms" | grep -qx "$want"; then
        echo "missing public symbol: $want"
        status=1
    fi
done
internal=$(printf '%s\n' "$syms" | grep '^zinx__' || true)
other=$(printf '%s\n' "$syms" | grep -v '^zinx_' | grep -v '^$' || true)
if [ -n "$internal$other" ]; then
    echo "exported but not public:"
    printf '%s\n' $internal $other
    status=1
fi
count=$(printf '%s\n' "$syms" | grep -c '^zinx_[^_]' || true)
echo "$count public symbols exported"
exit $status
