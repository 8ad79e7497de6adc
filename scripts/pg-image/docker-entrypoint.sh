#!/bin/sh
# Entrypoint of localhost/tidygate-pg:15, a PostgreSQL image built FROM scratch
# from the host's Debian binaries (see build.sh). It follows the semantics of
# the official postgres image's entrypoint that testcontainers-go's postgres
# module relies on:
#
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: the user),
#   POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256).
#
# On an empty $PGDATA it runs initdb, starts a temporary socket-only server
# (the first "ready to accept connections" line), creates POSTGRES_DB, runs
# /docker-entrypoint-initdb.d/* in order, stops that server, and finally execs
# postgres (the second ready line).
#
# Not implemented: *_FILE secrets, POSTGRES_INITDB_WALDIR, nss_wrapper,
# .sql.zst scripts, server options containing spaces.
set -eu

log() { printf '%s\n' "tidygate-pg entrypoint: $*" >&2; }

# A first argument that is an option means "postgres <options>".
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi

# Anything other than the server runs unchanged.
if [ "$1" != "postgres" ] && [ "$1" != "postmaster" ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = "0" ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 00700 "$PGDATA"
	chmod 03775 /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	# By absolute path: busybox sh would otherwise run its own setpriv applet.
	exec /usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
export POSTGRES_USER POSTGRES_DB

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != "trust" ]; then
		log "database is uninitialized and POSTGRES_PASSWORD is not set;"
		log "set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without a password"
		exit 1
	fi

	pwfile=
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		pwfile=$(mktemp)
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	fi
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words
	initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
		--encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
	if [ -n "$pwfile" ]; then rm -f "$pwfile"; fi

	# initdb's trust lines (local socket, 127.0.0.1, ::1) stay first.
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	# Temporary server with the caller's options, reachable only through the
	# socket. Options containing spaces are not supported.
	server=$1
	shift
	pg_ctl -D "$PGDATA" -w start -o "$* -c listen_addresses='' -p 5432"
	set -- "$server" "$@"

	psql_run() {
		psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" -q "$@"
	}

	if [ "$POSTGRES_DB" != "postgres" ]; then
		exists=$(psql_run --dbname postgres -tA -v db="$POSTGRES_DB" <<-'SQL'
			SELECT 1 FROM pg_database WHERE datname = :'db';
		SQL
		)
		if [ "$exists" != "1" ]; then
			psql_run --dbname postgres -v db="$POSTGRES_DB" <<-'SQL'
				CREATE DATABASE :"db";
			SQL
			log "created database $POSTGRES_DB"
		fi
	fi

	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				log "running $f"
				"$f"
			else
				log "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql) log "running $f"; psql_run --dbname "$POSTGRES_DB" <"$f" ;;
		*.sql.gz) log "running $f"; gunzip -c "$f" | psql_run --dbname "$POSTGRES_DB" ;;
		*.sql.xz) log "running $f"; xzcat "$f" | psql_run --dbname "$POSTGRES_DB" ;;
		*) log "ignoring $f" ;;
		esac
	done

	pg_ctl -D "$PGDATA" -m fast -w stop
	log "PostgreSQL init process complete; ready for start up"
else
	log "PostgreSQL database directory appears to contain a database; skipping initialization"
fi

exec "$@"
