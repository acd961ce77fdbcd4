# The gantry image built from source in two stages, for machines that can pull
# the Rust build image. Without a registry use scripts/build-gantry-image.sh, which
# builds the same static binary on the host and packs it with deploy/docker/Dockerfile.
#   docker build -t gantry/gantry:0.1.0 .
# The binary is static (glibc crt-static on the gnu target, as the agent images are),
# so the final stage is empty apart from it: no shell, no package manager.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static -C strip=debuginfo" \
      cargo build --release --locked --target x86_64-unknown-linux-gnu -p gantry \
 && cp target/x86_64-unknown-linux-gnu/release/gantry /gantry \
 && mkdir -p /rootfs/tmp /rootfs/etc \
 && chmod 1777 /rootfs/tmp \
 && echo 'gantry:x:10001:10001:gantry:/tmp:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'gantry:x:10001:' > /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build /gantry /usr/local/bin/gantry
ENV PATH=/usr/local/bin \
    GANTRY_LISTEN=0.0.0.0:8080
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gantry"]
CMD ["--help"]
