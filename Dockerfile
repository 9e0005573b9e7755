# Lifeboat: a backup sidecar for Docker Compose applications.
# Builds on debian:bookworm-slim (scripts/docker-base-image.sh makes it where no registry
# can be reached).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev meson ninja-build pkg-config \
      libarchive-dev libssl-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev \
      zlib1g-dev libzstd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY src ./src
RUN meson setup /build -Dtests=disabled -Dbuildtype=release -Db_ndebug=if-release \
 && ninja -C /build \
 && strip /build/lifeboat

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libarchive13 libssl3 libjansson4 libsqlite3-0 libcurl4 libmicrohttpd12 zlib1g libzstd1 \
      gpg gpg-agent gpgconf tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/lifeboat /usr/local/bin/lifeboat
COPY backup-scripts/ /backup-scripts/
RUN mkdir -p /var/lib/lifeboat && chmod 700 /var/lib/lifeboat
# `lifeboat run` schedules backups (BACKUP_SCHEDULE) or idles in manual mode; as PID 1 it
# reaps orphaned children itself.
ENTRYPOINT ["lifeboat"]
CMD ["run"]
# Unhealthy when the last scheduled run failed or a run is overdue.
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s CMD ["lifeboat", "status"]
