#!/usr/bin/env bash
# Start a Docker engine if none answers, and wait until `docker info` works.
#
# For machines without systemd (CI, sandboxes): dockerd is started in the
# background as root, logging to $DOCKERD_LOG (default /var/log/dockerd.log).
# Idempotent: returns at once when `docker info` already succeeds. As root on
# Debian, installs docker.io first when it is missing (DOCKER_NO_INSTALL=1
# refuses).
#
# Environment:
#   DOCKERD_LOG      log file (default /var/log/dockerd.log)
#   DOCKER_WAIT_SECS how long to wait for the engine (default 60)
#   DOCKER_NO_INSTALL=1  never install docker.io
set -euo pipefail

log=${DOCKERD_LOG:-/var/log/dockerd.log}
wait_secs=${DOCKER_WAIT_SECS:-60}

say() { printf 'start-docker: %s\n' "$*" >&2; }

# install_docker installs Debian's docker.io when this is root on a Debian
# machine and DOCKER_NO_INSTALL is not 1: what `make test` needs on a fresh
# machine, done as CI does it.
install_docker() {
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1 || [ "${DOCKER_NO_INSTALL:-0}" = 1 ]; then
		return 1
	fi
	say "installing docker.io with apt-get (set DOCKER_NO_INSTALL=1 to refuse)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >&2
}

if ! command -v docker >/dev/null 2>&1 && ! install_docker; then
	say "no docker client on PATH (install, as root: apt-get install -y docker.io)"
	exit 1
fi

if docker info >/dev/null 2>&1; then
	say "Docker engine already running"
	exit 0
fi
if [ "$(id -u)" -ne 0 ] && [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null 2>&1; then
	say "a Docker engine runs but this user may not use it: $(docker info 2>&1 | grep -m1 -i -E 'permission|denied|error' || true)"
	say "(add the user to the docker group, or run as root)"
	exit 1
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
	say "DOCKER_HOST=$DOCKER_HOST does not answer, and it is not a local socket I can start"
	exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		exec sudo -n -E "$0" "$@"
	fi
	say "Docker is not running and I am not root (and have no passwordless sudo) to start dockerd"
	exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 && ! install_docker; then
	say "dockerd not found (install, as root: apt-get install -y docker.io)"
	exit 1
fi

# A dockerd may be starting already (e.g. a concurrent call); only start one
# when no dockerd process exists.
if ! pgrep -x dockerd >/dev/null 2>&1; then
	# A stale pid file from a killed dockerd makes the new one refuse to start.
	if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
		rm -f /var/run/docker.pid
	fi
	mkdir -p "$(dirname "$log")"
	say "starting dockerd (log: $log)"
	# setsid: the engine must outlive this script and the make/CI step that ran it.
	setsid nohup dockerd >>"$log" 2>&1 </dev/null &
else
	say "dockerd process exists but does not answer yet; waiting"
fi

deadline=$((SECONDS + wait_secs))
until docker info >/dev/null 2>&1; do
	if [ "$SECONDS" -ge "$deadline" ]; then
		say "Docker engine did not answer within ${wait_secs}s; last lines of $log:"
		tail -n 30 "$log" >&2 || true
		exit 1
	fi
	sleep 0.5
done
say "Docker engine ready after $((SECONDS))s ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
