#!/usr/bin/env bash
# Entrypoint of worktree-gates-test/mariadb:10.11, an image built offline from Debian's packages
# by scripts/services. It honours the official mariadb image's environment contract (each
# MARIADB_* also read as the older MYSQL_* name, and as *_FILE for secrets):
#   MARIADB_ROOT_PASSWORD | MARIADB_ALLOW_EMPTY_ROOT_PASSWORD | MARIADB_RANDOM_ROOT_PASSWORD
#                          one of them is required on first start
#   MARIADB_ROOT_HOST      host part of the remote root account, default %
#   MARIADB_DATABASE       database created on first start
#   MARIADB_USER, MARIADB_PASSWORD   account created on first start, with all rights on it
# Data lives in /var/lib/mysql (a volume); the server listens on 3306 and runs as mysql.
# Scripts in /docker-entrypoint-initdb.d (*.sh, *.sql) run once after the first start.
set -Eeuo pipefail

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

# MARIADB_X from MARIADB_X, MARIADB_X_FILE, MYSQL_X or MYSQL_X_FILE, first one set wins.
env_alias() {
    local name=$1 value=
    for var in "MARIADB_$name" "MYSQL_$name"; do
        local file_var="${var}_FILE"
        if [ -n "${!var:-}" ]; then value=${!var}; break; fi
        if [ -n "${!file_var:-}" ]; then value=$(<"${!file_var}"); break; fi
    done
    export "MARIADB_$name"="$value"
    unset "MYSQL_$name" "MARIADB_${name}_FILE" "MYSQL_${name}_FILE"
}

# SQL string literal: quotes and backslashes escaped.
sql_str() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }
# SQL identifier: backticks doubled.
# shellcheck disable=SC2016  # the backticks are SQL's, not the shell's
sql_id() { printf '`%s`' "${1//\`/\`\`}"; }

# `docker run IMAGE --innodb-buffer-pool-size=64M` means `mariadbd --innodb-...`.
if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi

case "$1" in mariadbd | mysqld) server=1 ;; *) server= ;; esac

# As root: own the data and socket directories, then run this script again as mysql.
if [ -n "$server" ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$DATADIR" /run/mysqld
    chown -R mysql:mysql "$DATADIR" /run/mysqld
    exec gosu mysql "${BASH_SOURCE[0]}" "$@"
fi

if [ -n "$server" ] && [ ! -d "$DATADIR/mysql" ]; then
    for name in ROOT_PASSWORD ALLOW_EMPTY_ROOT_PASSWORD RANDOM_ROOT_PASSWORD ROOT_HOST \
        DATABASE USER PASSWORD; do
        env_alias "$name"
    done
    # The official image also accepts MYSQL_ALLOW_EMPTY_PASSWORD.
    : "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:=${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
    if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] &&
        [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
        echo >&2 "error: Database is uninitialized and password option is not specified"
        echo >&2 "  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
        exit 1
    fi
    if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ] && [ -z "$MARIADB_ROOT_PASSWORD" ]; then
        MARIADB_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
        echo "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
    fi
    root_host=${MARIADB_ROOT_HOST:-%}

    mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --skip-log-bin --rpm >/dev/null
    # A temporary server on the unix socket only, so no client sees a half-made database.
    "$@" --skip-networking --socket="$SOCKET" --skip-log-bin &
    pid=$!
    mariadb=(mariadb --protocol=socket --socket="$SOCKET" -uroot --batch --skip-column-names)
    for _ in $(seq 300); do
        if "${mariadb[@]}" -e 'SELECT 1' >/dev/null 2>&1; then break; fi
        kill -0 "$pid" 2>/dev/null || { echo >&2 "error: temporary server failed"; exit 1; }
        sleep 0.1
    done

    pw=$(sql_str "$MARIADB_ROOT_PASSWORD")
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        echo "DELETE FROM mysql.global_priv WHERE user = '' OR (user = 'root' AND host NOT IN ('localhost'));"
        echo "DELETE FROM mysql.proxies_priv WHERE NOT (user = 'root' AND host = 'localhost');"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
        if [ "$root_host" != localhost ]; then
            echo "CREATE USER 'root'@$(sql_str "$root_host") IDENTIFIED BY $pw;"
            echo "GRANT ALL ON *.* TO 'root'@$(sql_str "$root_host") WITH GRANT OPTION;"
            echo "GRANT PROXY ON ''@'%' TO 'root'@$(sql_str "$root_host") WITH GRANT OPTION;"
        fi
        if [ -n "$MARIADB_DATABASE" ]; then
            echo "CREATE DATABASE IF NOT EXISTS $(sql_id "$MARIADB_DATABASE");"
        fi
        if [ -n "$MARIADB_USER" ]; then
            echo "CREATE USER $(sql_str "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_str "$MARIADB_PASSWORD");"
            if [ -n "$MARIADB_DATABASE" ]; then
                echo "GRANT ALL ON $(sql_id "$MARIADB_DATABASE").* TO $(sql_str "$MARIADB_USER")@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | "${mariadb[@]}"
    # Root now has its password; the init scripts and the shutdown use it.
    export MYSQL_PWD=$MARIADB_ROOT_PASSWORD
    for f in /docker-entrypoint-initdb.d/*; do
        # shellcheck source=/dev/null  # the init scripts are the user's
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; "${mariadb[@]}" ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} <"$f" ;;
            *) ;;
        esac
    done
    mariadb-admin --socket="$SOCKET" -uroot shutdown
    wait "$pid"
    unset MYSQL_PWD
    echo "MariaDB init process complete; ready for start up."
fi

# exec: the server becomes PID 1 and SIGTERM from `docker stop` shuts it down cleanly.
exec "$@"
