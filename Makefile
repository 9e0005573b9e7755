# Convenience targets. The build itself is Meson (see README); the tests are ./test.sh.
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
EXAMPLE := $(COMPOSE) -f docker-compose.example.yml

.PHONY: example example-down build test

# Without a Docker engine and Compose, one line says what to install or start.
ifneq ($(filter example example-down,$(MAKECMDGOALS)),)
DOCKER_PROBLEM := $(shell scripts/require-docker.sh 2>&1)
$(if $(DOCKER_PROBLEM),$(error $(DOCKER_PROBLEM)))
endif

# Bring the example stack up and take a first backup.
example:
	scripts/docker-base-image.sh
	test -f .env || cp .env.example .env
	mkdir -p backups
	$(EXAMPLE) up -d --build
	scripts/wait-for-example.sh "$(EXAMPLE)"
	$(EXAMPLE) exec -T backup /backup-scripts/backup-now.sh
	$(EXAMPLE) exec -T backup /backup-scripts/list-backups.sh

example-down:
	$(EXAMPLE) down

build:
	meson setup build 2>/dev/null || true
	ninja -C build

test:
	./test.sh
