#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL server on 127.0.0.1 for the tests, from Debian's packages.
# PostgreSQL refuses to run as root, so the server runs as the postgres user.
set -euo pipefail
port="${INSITU_PG_PORT:-54329}"
data="${INSITU_PG_DATA:-/tmp/insitu-ci-pgdata}"

pgbin() {
  # initdb ships with the server package only (psql alone lives in the same folder).
  ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}

case "${1:-start}" in
start)
  if [ -z "$(pgbin)" ]; then
    echo "installing postgresql from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq postgresql </dev/null >/dev/null
  fi
  bin="$(pgbin)"
  if as_postgres "$bin/pg_isready -h 127.0.0.1 -p $port" >/dev/null 2>&1; then
    echo "postgresql already accepting connections on 127.0.0.1:$port" >&2
    exit 0
  fi
  rm -rf "$data"
  mkdir -p "$data"
  chown postgres:postgres "$data"
  as_postgres "$bin/initdb -D $data -A trust -U postgres --no-sync" >/dev/null
  as_postgres "$bin/pg_ctl -D $data -l $data/server.log -w -o \"-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off\" start" >/dev/null
  echo "postgresql started on 127.0.0.1:$port" >&2
  ;;
stop)
  bin="$(pgbin)"
  [ -n "$bin" ] && [ -d "$data" ] && as_postgres "$bin/pg_ctl -D $data -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$data"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
