# The sandbox image: podstitch as /usr/local/bin/call-kent-audio-cli.
#
# Build stage: the same distribution as the sandbox base image (Ubuntu 22.04,
# glibc 2.35), so the binary links against the libc it runs on. (A static
# musl binary would also do, but the musl target cannot be checked here.)
FROM docker.io/library/ubuntu:22.04 AS build
ARG RUST_VERSION=1.95.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev make \
 && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain "${RUST_VERSION}"
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY assets assets
COPY benches benches
RUN cargo build --release --locked --bin podstitch \
 && strip target/release/podstitch \
 && target/release/podstitch --version
# LAME is LGPL and linked statically: the image carries its exact source (the
# mp3lame-sys crate, which bundles LAME 3.100) so it can be rebuilt and
# relinked (README, "Licences").
RUN mkdir -p /notice \
 && cd /root/.cargo/registry/src/*/ \
 && tar czf /notice/mp3lame-sys-source.tar.gz mp3lame-sys-* \
 && cp mp3lame-sys-*/lame-3.100/COPYING /notice/LAME-COPYING

# Runtime: the sandbox base image keeps its own entrypoint (no CMD/ENTRYPOINT
# here); the worker execs /usr/local/bin/call-kent-audio-cli with no arguments.
FROM docker.io/cloudflare/sandbox:0.7.16
COPY --from=build /src/target/release/podstitch /usr/local/bin/podstitch
COPY --from=build /notice /usr/share/doc/podstitch/
RUN ln -s podstitch /usr/local/bin/call-kent-audio-cli \
 && test -s /etc/ssl/certs/ca-certificates.crt \
 && ! command -v ffmpeg \
 && podstitch --version
COPY assets/intro.mp3 assets/interstitial.mp3 assets/outro.mp3 /opt/call-kent-audio/assets/
