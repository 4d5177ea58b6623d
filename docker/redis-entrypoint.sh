#!/bin/sh
# Entrypoint of worktree-gates-test/redis:7, an image built offline from Debian's packages by
# scripts/services. Like the official redis image, arguments go to redis-server
# (`docker run IMAGE redis-server --requirepass X`, or just `--requirepass X`), data lives in
# /data (the working directory, a volume), and the server runs as the redis user.
set -eu

# `docker run IMAGE --port 7000` or `IMAGE /path/redis.conf` means redis-server with those args.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
    # The official image's server defaults to protected-mode no, or no client outside the
    # container could connect without a password; Debian's build defaults to yes. A config
    # file or an explicit --protected-mode keeps its own choice.
    case " $* " in
        *" --protected-mode "* | *.conf" "*) ;;
        *) shift; set -- redis-server --protected-mode no "$@" ;;
    esac
    # As root: own the data directory, then run this script again as redis.
    if [ "$(id -u)" = 0 ]; then
        find . \! -user redis -exec chown redis '{}' +
        exec gosu redis "$0" "$@"
    fi
    umask 0077
fi

# exec: the server becomes PID 1 and SIGTERM from `docker stop` shuts it down cleanly.
exec "$@"
