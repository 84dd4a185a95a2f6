# Conductor server image: `run-agent serve` on port 14355, runs root /data.
#
#   docker build -t conductor .                    # compile in a Rust toolchain image
#   cargo build --release --bins && \
#   docker build --target prebuilt -t conductor .  # copy target/release/{run-agent,conductor}
#
# The prebuilt binaries must be built against glibc <= Debian bookworm's (2.36). Secrets are never
# baked in: pass CONDUCTOR_API_KEY / CONDUCTOR_API_KEY_FILE at run time (see compose.yaml and the
# "Container" section of docs/operations.md).

ARG RUST_IMAGE=rust:1-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# --- runtime base: only what the server needs -------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime-base
# ca-certificates: TLS to agent APIs and webhooks; tini: PID 1 that forwards signals and reaps the
# supervisors and agent process groups re-parented to it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 conductor \
 && useradd --system --uid 10001 --gid conductor --home-dir /home/conductor --create-home \
        --shell /usr/sbin/nologin conductor \
 && mkdir -p /data \
 && chown conductor:conductor /data
ENV CONDUCTOR_ROOT=/data \
    CONDUCTOR_HOST=0.0.0.0 \
    CONDUCTOR_PORT=14355
USER conductor
WORKDIR /home/conductor
VOLUME ["/data"]
EXPOSE 14355
# No curl in the image: bash's /dev/tcp asks /healthz (public, needs no key).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/${CONDUCTOR_PORT:-14355} && printf "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && grep -q "\"status\":\"ok\"" <&3'
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/run-agent"]
CMD ["serve"]

# --- prebuilt: binaries from the host's target/release (no toolchain image needed) ------------
FROM runtime-base AS prebuilt
COPY target/release/run-agent target/release/conductor /usr/local/bin/

# --- build: release binaries from source -------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN rm -rf target \
 && cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/run-agent target/release/conductor /out/

# --- default: runtime with the binaries built above --------------------------------------------
FROM runtime-base AS runtime
COPY --from=build /out/run-agent /out/conductor /usr/local/bin/
