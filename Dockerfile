# syntax=docker/dockerfile:1
#
# reactord container image: a static binary on a distroless base, running as a non-root user.
#
#   docker build -t reactord --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm -p 8080:8080 -v "$PWD/public:/srv/www:ro" reactord -root /srv/www
#
# Build stage: CGO off gives a static binary that needs no libc in the final image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so the download layer is cached across source edits.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/reactord ./cmd/reactord \
    && /out/reactord -version

# Final stage: no shell, no package manager; uid/gid 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/reactord /usr/local/bin/reactord
USER nonroot:nonroot
EXPOSE 8080
# Inside a container the daemon must listen on all interfaces (the default is loopback).
# stderr is not a terminal here, so the daemon log is JSON; the access log goes to stdout.
ENTRYPOINT ["/usr/local/bin/reactord", "-listen", "0.0.0.0:8080"]
# Extra flags (e.g. -root /srv/www, -loops 4) are appended by `docker run IMAGE ...`.
CMD []
# No HEALTHCHECK: the distroless image has no HTTP client. Probe from the orchestrator instead
# (Kubernetes httpGet, a load balancer's health check): GET /readyz (or /healthz) answers 503
# as soon as a graceful shutdown starts, GET /livez as long as the process answers. With
# -admin-listen they move to their own port (deploy/kubernetes uses 9090).
STOPSIGNAL SIGTERM
