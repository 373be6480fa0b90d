package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestSetGCDefaults: without GOGC and GOMEMLIMIT stepupd runs with its
// own collector settings; either variable given leaves the runtime's
// (the environment's) settings alone.
func TestSetGCDefaults(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if !setGCDefaults(getenv) {
		t.Fatal("no GOGC, no GOMEMLIMIT: defaults not applied")
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("GC percent %d, want %d", got, defaultGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != defaultMemoryLimit {
		t.Fatalf("memory limit %d, want %d", got, defaultMemoryLimit)
	}
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		env = map[string]string{k: "200"}
		if setGCDefaults(getenv) {
			t.Fatalf("%s set: defaults applied over it", k)
		}
		if got := debug.SetGCPercent(100); got != 100 {
			t.Fatalf("%s set: GC percent changed to %d", k, got)
		}
		if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
			t.Fatalf("%s set: memory limit changed to %d", k, got)
		}
	}
}
