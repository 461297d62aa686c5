# syntax=docker/dockerfile:1
# sungrow as one static binary in a distroless image, running as a non-root user.
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse --short HEAD) -t sungrow .

FROM golang:1.26 AS build
# The image pins GOTOOLCHAIN=local; go.mod asks for a patch release (go 1.26.8) that an
# older cached golang:1.26 may lack, so let go fetch it instead of failing.
ENV GOTOOLCHAIN=auto
WORKDIR /src
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# CGO off: a static binary that needs no libc, so it runs on distroless/static. The
# cache mounts keep modules and build results between builds (and only the modules the
# binary needs are fetched, not the sqlc tool's).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/sungrow/sungrow/cmd.Version=${VERSION} -X github.com/sungrow/sungrow/cmd.Commit=${COMMIT}" \
      -o /out/sungrow . \
 && /out/sungrow version

# distroless/static has CA certificates (for rediss:// and sslmode=require) and tzdata,
# no shell and no package manager; :nonroot runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sungrow /sungrow
USER nonroot:nonroot
ENV LISTEN_ADDR=:8080
EXPOSE 8080
# No curl in the image: the binary checks itself (GET /health on LISTEN_ADDR's port).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/sungrow", "healthcheck"]
ENTRYPOINT ["/sungrow"]
CMD ["serve"]
