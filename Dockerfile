# finql: multi-stage build.
#
#   docker build -t finql .
#   docker run --rm -p 8000:8000 -v finql-data:/app/data finql
#
# Stage 1 (skeleton) turns the workspace into its manifests plus stub sources, so that
# stage 2 can build and cache all dependencies in a layer that only changes when a
# Cargo.toml, Cargo.lock or the set of .rs files changes, not when code is edited.

# ---------------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS skeleton
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY . .
# Every Cargo.toml and Cargo.lock as they are; every .rs file (crate roots, bins, benches,
# tests, examples, build scripts) replaced by the same stub, so that every target that a
# manifest names exists and the stubbed workspace compiles.
RUN set -eux; \
    mkdir /skeleton; \
    find . -path ./target -prune -o \( -name Cargo.toml -o -name Cargo.lock \) \
        -exec cp --parents -t /skeleton {} +; \
    find . -path ./target -prune -o -name '*.rs' -print | while IFS= read -r f; do \
        mkdir -p "/skeleton/$(dirname "$f")"; \
        printf '#![allow(warnings)]\nfn main() {}\n' > "/skeleton/$f"; \
    done

# ---------------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# Dependencies only (cached).
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --bin finql

# The real sources. The stubs were compiled after the real files' modification times, so
# touch the sources to make cargo rebuild the workspace's own crates.
COPY . .
RUN set -eux; \
    find . -path ./target -prune -o -name '*.rs' -exec touch {} +; \
    cargo build --release --bin finql; \
    install -m 0755 target/release/finql /usr/local/bin/finql

# ---------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 finql; \
    useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin finql; \
    mkdir -p /app/data; \
    chown -R 10001:10001 /app

COPY --from=builder /usr/local/bin/finql /usr/local/bin/finql

WORKDIR /app
# The SQLite database defaults to ./data, that is /app/data: mount a volume there to keep it.
ENV FINQL_ADDR=0.0.0.0:8000
USER 10001:10001
EXPOSE 8000

# `finql healthcheck` GETs /health on FINQL_ADDR and exits 0 (healthy) or 1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/finql", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/finql"]
CMD ["serve"]
