package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// flowError is a failed operation. kind groups errors for the report
// ("token: status 400"); detail is one sample of what happened.
type flowError struct {
	kind, detail string
}

func (e *flowError) Error() string { return e.kind + ": " + e.detail }

func stepErr(step, kind, format string, args ...any) error {
	return &flowError{kind: step + ": " + kind, detail: fmt.Sprintf(format, args...)}
}

// tally is one worker's record; workers never share one, so recording
// needs no lock, and the tallies are merged once the mode is over.
type tally struct {
	lat    []time.Duration // successful operations only
	errs   int64
	kinds  map[string]int64
	sample map[string]string
}

func newTally() *tally {
	return &tally{kinds: map[string]int64{}, sample: map[string]string{}}
}

func (t *tally) record(d time.Duration, err error) {
	if err == nil {
		t.lat = append(t.lat, d)
		return
	}
	t.errs++
	var fe *flowError
	kind, detail := "other", err.Error()
	if errors.As(err, &fe) {
		kind, detail = fe.kind, fe.detail
	}
	t.kinds[kind]++
	if _, ok := t.sample[kind]; !ok {
		t.sample[kind] = detail
	}
}

func (t *tally) merge(o *tally) {
	t.lat = append(t.lat, o.lat...)
	t.errs += o.errs
	for k, n := range o.kinds {
		t.kinds[k] += n
		if _, ok := t.sample[k]; !ok {
			t.sample[k] = o.sample[k]
		}
	}
}

// result is what one mode measured.
type result struct {
	mode        string
	concurrency int
	elapsed     time.Duration
	requests    int64 // HTTP round trips during the timed phase
	t           *tally
	na          string // why the mode does not apply to this target
	cpu         cpuUse
	notes       []string
}

func (r *result) ops() int { return len(r.t.lat) }

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops()) / r.elapsed.Seconds()
}

// pct is the nearest-rank percentile of the sorted latencies.
func (r *result) pct(p float64) time.Duration {
	n := len(r.t.lat)
	if n == 0 {
		return 0
	}
	i := int(p/100*float64(n)+0.5) - 1
	return r.t.lat[max(0, min(n-1, i))]
}

func (r *result) reqPerOp() float64 {
	attempts := int64(r.ops()) + r.t.errs
	if attempts == 0 {
		return 0
	}
	return float64(r.requests) / float64(attempts)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// print writes the human-readable report of one mode.
func (r *result) print(w io.Writer, label string) {
	if r.na != "" {
		fmt.Fprintf(w, "%-10s %s  n/a: %s\n", r.mode, label, r.na)
		return
	}
	slices.Sort(r.t.lat)
	fmt.Fprintf(w, "%-10s %s  c=%d  ops=%d  %.1f ops/s  p50=%sms  p99=%sms  errors=%d  req/op=%.2f  (%.1fs)\n",
		r.mode, label, r.concurrency, r.ops(), r.rate(), ms(r.pct(50)), ms(r.pct(99)), r.t.errs, r.reqPerOp(), r.elapsed.Seconds())
	kinds := make([]string, 0, len(r.t.kinds))
	for k := range r.t.kinds {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { return int(r.t.kinds[b] - r.t.kinds[a]) })
	for i, k := range kinds {
		if i == 5 {
			fmt.Fprintf(w, "    … %d more error kinds\n", len(kinds)-5)
			break
		}
		fmt.Fprintf(w, "    error %-40s ×%d  e.g. %s\n", k, r.t.kinds[k], excerpt(r.t.sample[k], 300))
	}
	if r.cpu.ok {
		fmt.Fprintf(w, "    cpu: server %.3f ms/op, bench %.3f ms/op, other processes %.2f cores; server RSS after %.0f MiB\n",
			r.cpu.serverMSPerOp, r.cpu.benchMSPerOp, r.cpu.otherCores, r.cpu.rssMiB)
		if by := r.cpu.byPID(); by != "" {
			fmt.Fprintf(w, "    %s\n", by)
		}
	}
	if r.cpu.redisPerOp >= 0 || r.cpu.tripsPerOp >= 0 {
		fmt.Fprintf(w, "    redis: %.1f commands/op (scripts' inner commands included), %.1f round trips/op (stepupd's count)\n", r.cpu.redisPerOp, r.cpu.tripsPerOp)
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "    note: %s\n", n)
	}
}

// byPID says how the server CPU per operation splits over the -pid
// processes, in their order (e.g. the stepupd instances, then Redis):
// what a capacity model multiplies separately. Empty with one process.
func (u cpuUse) byPID() string {
	if len(u.perPIDMSPerOp) == 0 {
		return ""
	}
	parts := make([]string, len(u.perPIDMSPerOp))
	for i, v := range u.perPIDMSPerOp {
		parts[i] = fmt.Sprintf("%.3f", v)
	}
	return "server CPU by -pid: " + strings.Join(parts, " + ") + " ms/op"
}

// mdHeader is the header of the rows mdRow writes.
const mdHeader = "| server | mode | conc | ops | ops/s | p50 ms | p99 ms | errors | HTTP req/op | Redis round trips/op | Redis cmds/op | server CPU ms/op | bench CPU ms/op | other procs (cores) | RSS MiB after | notes |\n" +
	"|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n"

// mdRow is one markdown table row (see mdHeader).
func (r *result) mdRow(label string) string {
	if r.na != "" {
		return fmt.Sprintf("| %s | %s | – | – | – | – | – | – | – | – | – | – | – | – | – | n/a: %s |", label, r.mode, r.na)
	}
	slices.Sort(r.t.lat)
	note := strings.Join(r.notes, "; ")
	if by := r.cpu.byPID(); by != "" {
		note = strings.TrimPrefix(note+"; "+by, "; ")
	}
	if r.t.errs > 0 {
		// The most frequent error kind says more than a count.
		var top string
		for k, n := range r.t.kinds {
			if top == "" || n > r.t.kinds[top] {
				top = k
			}
		}
		note = strings.TrimPrefix(note+"; top error: "+top, "; ")
	}
	srv, self, other, rss, redis, trips := "–", "–", "–", "–", "–", "–"
	if r.cpu.redisPerOp >= 0 {
		redis = fmt.Sprintf("%.1f", r.cpu.redisPerOp)
	}
	if r.cpu.tripsPerOp >= 0 {
		trips = fmt.Sprintf("%.1f", r.cpu.tripsPerOp)
	}
	if r.cpu.ok {
		srv, self = fmt.Sprintf("%.3f", r.cpu.serverMSPerOp), fmt.Sprintf("%.3f", r.cpu.benchMSPerOp)
		other, rss = fmt.Sprintf("%.2f", r.cpu.otherCores), fmt.Sprintf("%.0f", r.cpu.rssMiB)
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %.1f | %s | %s | %d | %.2f | %s | %s | %s | %s | %s | %s | %s |",
		label, r.mode, r.concurrency, r.ops(), r.rate(), ms(r.pct(50)), ms(r.pct(99)), r.t.errs, r.reqPerOp(), trips, redis, srv, self, other, rss, note)
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
