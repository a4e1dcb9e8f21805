#!/bin/sh
# Same contract as the official postgres image, for an image built from
# Debian's postgresql-15: POSTGRES_PASSWORD (required), POSTGRES_USER (default
# postgres), POSTGRES_DB (default: the user); /docker-entrypoint-initdb.d/*.sql
# and *.sh run once on a fresh PGDATA. postgres ends up as PID 1.
set -eu
case "${1:-}" in -*) set -- postgres "$@" ;; esac   # `command: -c key=value`
if [ "${1:-}" != postgres ]; then exec "$@"; fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
pg="setpriv --reuid=postgres --regid=postgres --init-groups"

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"; chmod 2775 /var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp); printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"; chown postgres "$pwfile"
  $pg initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  # The set-up server listens only on a private socket, so nobody (pg_isready
  # in a healthcheck included) sees it as ready before the set-up is done.
  export PGHOST; PGHOST=$(mktemp -d); chown postgres "$PGHOST"
  $pg pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$PGHOST" -w -s start
  psql="psql -v ON_ERROR_STOP=1 -q -U $user"
  if [ "$db" != postgres ]; then $psql -d postgres -c "CREATE DATABASE \"$db\""; fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) $psql -d "$db" -f "$f" ;;
      *.sh) . "$f" ;;
    esac
  done
  $pg pg_ctl -D "$PGDATA" -m fast -w -s stop
  rm -rf "$PGHOST"; unset PGHOST
  echo "PostgreSQL init process complete; ready for start up."
fi
exec $pg "$@"
