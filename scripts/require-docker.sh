#!/bin/sh
# One line saying what is missing when `make example` cannot reach a Docker engine with
# Compose, instead of a failure somewhere in the middle; exit 1 then.
command -v docker >/dev/null 2>&1 || {
	echo "make example: no docker command: install Docker Engine and Compose (Debian: apt-get install docker.io docker-compose)" >&2
	exit 1
}
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || {
	echo "make example: no Docker Compose: install it (Debian: apt-get install docker-compose)" >&2
	exit 1
}
docker info >/dev/null 2>&1 || {
	echo "make example: the Docker engine does not answer${DOCKER_HOST:+ at $DOCKER_HOST}: start it (systemctl start docker, or dockerd &) or check your access to its socket" >&2
	exit 1
}
exit 0
