# Lifeboat: a backup sidecar for Docker Compose applications.
# Built on debian:bookworm-slim (scripts/docker-base-image.sh makes it where no registry
# can be reached); the image itself is FROM scratch with only what its programs load.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev meson ninja-build pkg-config \
      libarchive-dev libssl-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev \
      libpq-dev libmongoc-dev libbson-dev libmariadb-dev zlib1g-dev libzstd-dev libdeflate-dev \
      libicu-dev icu-devtools \
 && rm -rf /var/lib/apt/lists/*
# The image's libicudata: only the data libmongoc's SASLprep reads (0.4 MB, not 30 MB).
COPY scripts/icu-data-subset.sh /usr/local/sbin/
RUN /usr/local/sbin/icu-data-subset.sh /icu
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY src ./src
RUN meson setup /build -Dtests=disabled -Dbuildtype=release -Db_ndebug=if-release \
 && ninja -C /build \
 && strip /build/lifeboat /build/lifeboat-sched

# The programs Lifeboat runs, installed from Debian's packages; scripts/image-rootfs.sh then
# copies each with the libraries it loads (and the data they read) into /rootfs.
FROM debian:bookworm-slim AS collect
# PostgreSQL client tools: Debian's (15) by default; PG_MAJOR=16/17 takes them from
# PostgreSQL's own apt repository instead (pg_dump must be at least the server's version).
ARG PG_MAJOR=
# rclone (the rclone store, BACKUP_RCLONE_REMOTE): Debian's, a 54 MB static program, so
# off by default; --build-arg RCLONE=1 puts it in.
ARG RCLONE=
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libarchive13 libssl3 libjansson4 libsqlite3-0 libcurl4 libmicrohttpd12 libpq5 \
      libmongoc-1.0-0 libbson-1.0-0 libmariadb3 mariadb-client zlib1g libzstd1 libdeflate0 \
      gpg gpg-agent gpgconf age tzdata ca-certificates redis-tools busybox-static \
 && if [ -z "$PG_MAJOR" ]; then \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client; \
    else \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl \
      && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
           | gpg --dearmor -o /usr/share/keyrings/pgdg.gpg \
      && echo "deb [signed-by=/usr/share/keyrings/pgdg.gpg] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
           > /etc/apt/sources.list.d/pgdg.list \
      && apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "postgresql-client-$PG_MAJOR"; \
    fi \
 && if [ -n "$RCLONE" ]; then \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rclone; \
    fi \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/lifeboat /build/lifeboat-sched /usr/local/bin/
COPY backup-scripts/ /backup-scripts/
COPY --from=build /icu/ /usr/local/lib/icu-subset/
COPY scripts/image-rootfs.sh /usr/local/sbin/image-rootfs.sh
RUN ICU_SUBSET=/usr/local/lib/icu-subset /usr/local/sbin/image-rootfs.sh /rootfs

# The image: nothing but /rootfs (no package manager, no Debian base).
FROM scratch
COPY --from=collect /rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
# /var/lib/lifeboat (mode 1777, like /tmp) also for a container run as `user: UID:GID`,
# whose HOME is / when the UID has no passwd entry.
ENV BACKUP_STATE_DIR=/var/lib/lifeboat
# `lifeboat run` schedules backups (BACKUP_SCHEDULE) or idles in manual mode; once it has
# checked the configuration it becomes lifeboat-sched (same pid), which as PID 1 reaps
# orphaned children itself and starts each run as a child `lifeboat run --job ...`.
# Debian's libmongoc initialises itself when loaded and creates /dev/shm/mongoc-PID for its
# counters; a process killed outright leaves it behind, and a later process with the same
# PID then prints a warning. Lifeboat does not use the counters.
ENV MONGOC_DISABLE_SHM=1
ENTRYPOINT ["lifeboat"]
CMD ["run"]
# Unhealthy when the last scheduled run failed or a run is overdue.
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s CMD ["lifeboat", "status"]
