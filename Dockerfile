# syntax=docker/dockerfile:1
# The eventlog server: a static Go binary on distroless.
#   docker build -t eventlog/server .            (or: docker compose build)
#   docker run eventlog/server --help
# Build args: VERSION (printed by `server version`).

FROM golang:1.26 AS build
WORKDIR /src
# Module downloads first, so they stay cached while the code changes.
COPY go.mod go.sum ./
# The root module replaces the client module with ./client: its go.mod is
# part of the module graph.
COPY client/go.mod client/go.sum ./client/
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/server ./cmd/server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /usr/local/bin/server
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/server"]
CMD ["serve"]
