// Command stepup-demo is a tiny bank that shows step-up with stepup from
// both ends: its API is a resource server (package rs) whose balance needs
// 1fa and whose withdrawals need the multi-factor level within 300 s, and
// its web page is a relying party (package rp) that answers the API's
// RFC 9470 challenge by sending the user back to stepup and retrying.
//
//	stepup-demo -issuer http://localhost:8080 -client-id demo-bank \
//	    -client-secret … -listen :9000 -redirect-url http://localhost:9000/callback
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	fs := flag.NewFlagSet("stepup-demo", flag.ExitOnError)
	var o Options
	fs.StringVar(&o.Issuer, "issuer", "http://localhost:8080", "stepup's issuer URL")
	fs.StringVar(&o.ClientID, "client-id", "demo-bank", "the bank's client id at stepup (also the audience of its API)")
	fs.StringVar(&o.ClientSecret, "client-secret", "", "the bank's client secret")
	listen := fs.String("listen", ":9000", "address to serve the bank on")
	fs.StringVar(&o.RedirectURL, "redirect-url", "http://localhost:9000/callback", "the bank's registered redirect URI")
	audiences := fs.String("api-audiences", "", "more client ids whose access tokens the API accepts, comma-separated (e.g. a single-page app's)")
	origins := fs.String("cors-origins", "", "origins allowed to call the API from a browser, comma-separated (e.g. http://localhost:5173)")
	_ = fs.Parse(os.Args[1:])
	o.APIAudiences = splitList(*audiences)
	o.CORSOrigins = splitList(*origins)

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, *listen, log); err != nil {
		fmt.Fprintln(os.Stderr, "stepup-demo:", err)
		os.Exit(1)
	}
}

// httpServer bounds every phase of a connection like stepupd does, so a
// slow or idle client cannot hold the bank's connections (and memory)
// open: headers, the whole request, the response, idle keep-alives, and
// the header size.
func httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

func run(ctx context.Context, o Options, listen string, log *slog.Logger) error {
	h, err := newBank(o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := httpServer(h)
	log.Info("demo bank listening", "addr", ln.Addr().String(), "issuer", o.Issuer, "client_id", o.ClientID)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
