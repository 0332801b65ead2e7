#!/bin/sh
# Run a command inside a loopback-only network namespace when this machine allows one, so
# that anything it starts (Ray) can listen on nothing but 127.0.0.1. Falls back to running
# the command directly where unprivileged namespaces are unavailable.
if command -v unshare >/dev/null 2>&1 && unshare --net true 2>/dev/null; then
    exec unshare --net sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh "$@"
fi
exec "$@"
