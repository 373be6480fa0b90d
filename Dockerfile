# Build static stepupd (and the stepup-demo bank) and run as non-root on
# distroless. The compose file runs stepup-demo from the same image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stepupd ./cmd/stepupd
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stepup-demo ./cmd/stepup-demo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stepupd /stepupd
COPY --from=build /out/stepup-demo /stepup-demo
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/stepupd"]
CMD ["-config", "/etc/stepup/stepup.yaml"]
