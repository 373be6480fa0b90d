package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An audit event is one JSON line with the fields slog.Logger.Log wrote
// (time, level, msg "audit", event, then the attrs in order, the
// logger's own attrs first), written before Event returns, and counted.
func TestEventRecord(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With("instance", "a")
	m := NewMetrics()
	a := NewAuditor(log, m)
	before := time.Now().Truncate(time.Millisecond)
	a.Event(context.Background(), EventToken, "grant_type", "client_credentials", "client_id", "bank\"\n")
	a.Event(context.Background(), EventRefreshReuse, "client_id", "bank", "sub", "u1", "reason", "refresh_reuse", "n", 3, "extra", "x", "more", "y")

	var want bytes.Buffer
	ref := slog.New(slog.NewJSONHandler(&want, nil)).With("instance", "a")
	ref.Info("audit", "event", EventToken, "grant_type", "client_credentials", "client_id", "bank\"\n")
	ref.Warn("audit", "event", EventRefreshReuse, "client_id", "bank", "sub", "u1", "reason", "refresh_reuse", "n", 3, "extra", "x", "more", "y")

	got, exp := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")), bytes.Split(bytes.TrimSpace(want.Bytes()), []byte("\n"))
	if len(got) != 2 || len(exp) != 2 {
		t.Fatalf("records:\n%s", buf.Bytes())
	}
	for i := range got {
		var g, e map[string]any
		if err := json.Unmarshal(got[i], &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(exp[i], &e); err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse(time.RFC3339Nano, g["time"].(string))
		if err != nil || ts.Before(before) || ts.After(time.Now()) {
			t.Fatalf("time %v: %v", g["time"], err)
		}
		delete(g, "time")
		delete(e, "time")
		gb, _ := json.Marshal(g)
		eb, _ := json.Marshal(e)
		if !bytes.Equal(gb, eb) {
			t.Fatalf("record %s\nwant   %s", got[i], exp[i])
		}
		// Same keys in the same order as slog.Logger.Log's line.
		if j := bytes.Index(got[i], []byte(`"level"`)); j < 0 || !bytes.Equal(got[i][j:], exp[i][bytes.Index(exp[i], []byte(`"level"`)):]) {
			t.Fatalf("record %s\nwant   %s", got[i], exp[i])
		}
	}
	if n := count(t, m, "stepup_tokens_issued_total", "grant_type", "client_credentials"); n != 1 {
		t.Fatalf("tokens counted %v", n)
	}
	if n := count(t, m, "stepup_failures_total", "reason", "refresh_reuse"); n != 1 {
		t.Fatalf("failures counted %v", n)
	}
	// Below the handler's level nothing is written, the event still counts.
	buf.Reset()
	quiet := NewAuditor(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), m)
	quiet.Event(context.Background(), EventToken, "grant_type", "client_credentials")
	if buf.Len() != 0 || count(t, m, "stepup_tokens_issued_total", "grant_type", "client_credentials") != 2 {
		t.Fatalf("an Info event below Warn: %q", buf.Bytes())
	}
}

// BenchmarkEventToken is the audit record of a client_credentials token,
// written to a file as stepupd writes its log to stderr, and to nowhere
// (the encoding and metrics alone).
func BenchmarkEventToken(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, w := range []struct {
		name string
		w    io.Writer
	}{{"file", f}, {"discard", io.Discard}} {
		b.Run(w.name, func(b *testing.B) {
			a := NewAuditor(slog.New(slog.NewJSONHandler(w.w, nil)), NewMetrics())
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				a.Event(ctx, EventToken, "grant_type", "client_credentials", "client_id", "bank")
			}
		})
	}
}

// count is the value of the counter name{label="value"} in m's registry.
func count(t *testing.T, m *Metrics, name, label, value string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, c := range mf.GetMetric() {
			for _, l := range c.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return c.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRequestCountersResolvedOnce: the counters Request and Event keep
// resolved count what the vectors counted (from several goroutines, for
// status codes kept resolved and others), and a code no request ended
// with is not exported.
func TestRequestCountersResolvedOnce(t *testing.T) {
	m := NewMetrics()
	a := NewAuditor(slog.New(slog.NewJSONHandler(io.Discard, nil)), m)
	statuses := []int{200, 200, 302, 404, 429, 200, 400}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 100; i++ {
				for _, s := range statuses {
					m.Request("/oauth/token", s, time.Millisecond)
				}
				m.Request("", 404, time.Millisecond)
				a.Event(context.Background(), EventToken, "grant_type", "client_credentials")
				a.Event(context.Background(), EventToken, "grant_type", "refresh_token")
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, c := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range c.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case c.GetCounter() != nil:
				got[key] = c.GetCounter().GetValue()
			case c.GetHistogram() != nil:
				got[key] = float64(c.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"stepup_http_requests_total,code=200,route=/oauth/token":   1200,
		"stepup_http_requests_total,code=302,route=/oauth/token":   400,
		"stepup_http_requests_total,code=404,route=/oauth/token":   400,
		"stepup_http_requests_total,code=429,route=/oauth/token":   400,
		"stepup_http_requests_total,code=400,route=/oauth/token":   400,
		"stepup_http_requests_total,code=404,route=unmatched":      400,
		"stepup_http_request_duration_seconds,route=/oauth/token":  2800,
		"stepup_http_request_duration_seconds,route=unmatched":     400,
		"stepup_tokens_issued_total,grant_type=client_credentials": 400,
		"stepup_tokens_issued_total,grant_type=refresh_token":      400,
		"stepup_audit_events_total,event=" + EventToken:            800,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "stepup_http_requests_total") {
			if _, ok := want[k]; !ok {
				t.Errorf("%s exported (%v), no request ended so", k, got[k])
			}
		}
	}
}
