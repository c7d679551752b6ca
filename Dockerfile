# rootscan's image for those who build with docker: `docker build --build-arg VERSION=0.1.0 -t rootscan .`
# `make image` builds the same image without a docker engine (internal/imagebuild), reproducibly, and is what CI and
# the manifests in deploy/ use. This file runs that same builder to lay out the files, so both ship the same files
# with the same modes and owners (a test in internal/imagebuild holds this stage, the config below and the builder
# together); only the timestamps, and so the digest, are docker's.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static binary, the pinned ca-certificates .deb (apt-get download), users, os-release and directories into /rootfs.
RUN go run ./internal/imagebuild/cmd/mkimage -version "$VERSION" -cache /tmp/cache -rootfs /rootfs

FROM scratch
COPY --from=build /rootfs/ /
ARG VERSION=dev
LABEL org.opencontainers.image.source="https://github.com/rootscan/rootscan" \
      org.opencontainers.image.title="rootscan" \
      org.opencontainers.image.description="Node-level container scanner: packages, vulnerabilities, compliance, drift" \
      org.opencontainers.image.version="$VERSION"
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /
EXPOSE 9090/tcp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/rootscan"]
