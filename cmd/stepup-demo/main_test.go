package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDemoServerBoundsConnections: the demo bank's server has every
// timeout stepupd has and refuses oversized headers (issue 13 item 15;
// before, it set only ReadHeaderTimeout and took 1 MB of headers).
func TestDemoServerBoundsConnections(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httpServer(ok)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("unbounded server: read header %v, read %v, write %v, idle %v, max header bytes %d",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	ts := httptest.NewUnstartedServer(ok)
	ts.Config = srv
	ts.Start()
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	req.Header.Set("X-Filler", strings.Repeat("a", 200<<10))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("200 KiB of headers: %d, want 431", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, ts.URL, nil)
	if resp, err = ts.Client().Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a plain request: %v %v", resp, err)
	}
	resp.Body.Close()
}
