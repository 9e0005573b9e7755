# Lifeboat: a backup sidecar for Docker Compose applications.
# Builds on debian:bookworm-slim (scripts/docker-base-image.sh makes it where no registry
# can be reached).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev meson ninja-build pkg-config \
      libarchive-dev libssl-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev \
      libpq-dev libmongoc-dev libbson-dev libmariadb-dev zlib1g-dev libzstd-dev libdeflate-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY src ./src
RUN meson setup /build -Dtests=disabled -Dbuildtype=release -Db_ndebug=if-release \
 && ninja -C /build \
 && strip /build/lifeboat

FROM debian:bookworm-slim
# PostgreSQL client tools: Debian's (15) by default; PG_MAJOR=16/17 takes them from
# PostgreSQL's own apt repository instead (pg_dump must be at least the server's version).
ARG PG_MAJOR=
# rclone (the rclone store, BACKUP_RCLONE_REMOTE): Debian's, 57 MB installed, so off by
# default; --build-arg RCLONE=1 puts it in.
ARG RCLONE=
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libarchive13 libssl3 libjansson4 libsqlite3-0 libcurl4 libmicrohttpd12 libpq5 \
      libmongoc-1.0-0 libbson-1.0-0 libmariadb3 mariadb-client zlib1g libzstd1 libdeflate0 \
      gpg gpg-agent gpgconf age tzdata ca-certificates redis-tools \
 && if [ -z "$PG_MAJOR" ]; then \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client; \
    else \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl \
      && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
           | gpg --dearmor -o /usr/share/keyrings/pgdg.gpg \
      && echo "deb [signed-by=/usr/share/keyrings/pgdg.gpg] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
           > /etc/apt/sources.list.d/pgdg.list \
      && apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "postgresql-client-$PG_MAJOR" \
      && apt-get purge -y curl && apt-get autoremove -y; \
    fi \
 && if [ -n "$RCLONE" ]; then \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rclone; \
    fi \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/lifeboat /usr/local/bin/lifeboat
COPY backup-scripts/ /backup-scripts/
RUN mkdir -p /var/lib/lifeboat && chmod 700 /var/lib/lifeboat
# `lifeboat run` schedules backups (BACKUP_SCHEDULE) or idles in manual mode; as PID 1 it
# reaps orphaned children itself.
# Debian's libmongoc initialises itself when loaded and creates /dev/shm/mongoc-PID for its
# counters; a process killed outright leaves it behind, and a later process with the same
# PID then prints a warning. Lifeboat does not use the counters.
ENV MONGOC_DISABLE_SHM=1
ENTRYPOINT ["lifeboat"]
CMD ["run"]
# Unhealthy when the last scheduled run failed or a run is overdue.
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s CMD ["lifeboat", "status"]
