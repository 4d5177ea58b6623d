#!/usr/bin/env bash
# Entrypoint of worktree-gates-test/postgres:15, an image built offline from Debian's packages by
# scripts/services. It honours the official postgres image's environment contract, so the docker
# backend takes one code path for both:
#   POSTGRES_PASSWORD          required, unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER              superuser, default postgres
#   POSTGRES_DB                database created on first start, default $POSTGRES_USER
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP clients, default scram-sha-256
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   PGDATA                     data directory (a volume), default /var/lib/postgresql/data
# Each of the first three may be given as *_FILE instead. Scripts in /docker-entrypoint-initdb.d
# (*.sh, *.sql) run once after the first initdb, as in the official image.
set -Eeuo pipefail

# VAR_FILE names a file holding VAR's value (Docker secrets); both at once is an error.
file_env() {
    local var=$1 file_var="${1}_FILE" default=${2:-}
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        echo >&2 "error: both $var and $file_var are set (but are exclusive)"
        exit 1
    fi
    local value=$default
    if [ -n "${!var:-}" ]; then value=${!var}; elif [ -n "${!file_var:-}" ]; then value=$(<"${!file_var}"); fi
    export "$var"="$value"
    unset "$file_var"
}

# `docker run IMAGE -c fsync=off` means `postgres -c fsync=off`.
if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

export PGDATA=${PGDATA:-/var/lib/postgresql/data}

# As root: own the data and socket directories, then run this script again as postgres.
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    chown postgres:postgres /var/run/postgresql
    chmod 3777 /var/run/postgresql
    exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
        cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       Or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password.
MSG
        exit 1
    fi

    # initdb reads the password from a file so that it never shows in `ps`.
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list by contract
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"

    # A temporary server on the unix socket only, so no client sees a half-made database.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -s start
    export PGUSER=$POSTGRES_USER PGPASSWORD=$POSTGRES_PASSWORD PGHOST=/var/run/postgresql
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --dbname postgres)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        # shellcheck source=/dev/null  # the init scripts are the user's
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w -s stop
    unset PGUSER PGPASSWORD PGHOST
    echo "PostgreSQL init process complete; ready for start up."
fi

# exec: the server becomes PID 1 and gets docker's stop signal (SIGINT: fast shutdown).
exec "$@"
