# Build a static stepupd and run it as non-root on distroless.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stepupd ./cmd/stepupd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stepupd /stepupd
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/stepupd"]
CMD ["-config", "/etc/stepup/stepup.yaml"]
