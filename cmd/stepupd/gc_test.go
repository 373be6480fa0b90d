package main

import (
	"math"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn/password"
)

// TestSetGCDefaults: without GOGC and GOMEMLIMIT stepupd runs with its
// own collector settings; either variable given leaves the runtime's
// (the environment's) settings alone.
func TestSetGCDefaults(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { password.SetHeapWork(nil); debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

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

// TestMemoryLimitCoversHeapHashes: an imported scrypt hash (passlib's
// default cost, ln=16: 64 MiB that x/crypto/scrypt allocates on the Go
// heap, where argon2's work areas are mapped outside it) is verified
// under stepupd's default soft memory limit without the live heap
// passing the limit: the limit is raised by the hash's work area while it
// runs, and put back after. Without that the heap sits 20 MiB over the
// 48 MiB limit for the whole hash and the collector runs back to back
// (up to half the CPU by the runtime's own cap) for every request served
// meanwhile. The hash was made by Python's hashlib.scrypt(n=2**16, r=8,
// p=1, dklen=32), in passlib's layout.
//
// The same holds for an argon2id hash that works in fresh memory (no
// pooled work area fits it: password.Verify, an imported hash with more
// memory than the configured parameters): that memory is a Go heap
// slice too. That hash was made by Debian's argon2 tool (-id -m 16 -t 1
// -p 1 -l 32).
func TestMemoryLimitCoversHeapHashes(t *testing.T) {
	for _, c := range []struct{ name, hash string }{
		{"scrypt", "$scrypt$ln=16,r=8,p=1$CSN1LqTjJCmV.WWDRViRLQ$IaCMFoU5naKIeuFDQ/ha7fCYUlNfB2xzaayJljGOU0g"},
		{"argon2id", "$argon2id$v=19$m=65536,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$4vWGArhLB7NuGeXTfxAK3WUJuzMJAUtVkxqNbSaKYas"},
	} {
		t.Run(c.name, func(t *testing.T) { testMemoryLimitCovers(t, c.hash) })
	}
}

func testMemoryLimitCovers(t *testing.T, hash string) {
	const work = 64 << 20 // scrypt's 128·r·N, argon2id's m
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { password.SetHeapWork(nil); debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	if !setGCDefaults(func(string) string { return "" }) {
		t.Fatal("defaults not applied")
	}
	var highest atomic.Int64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if l := debug.SetMemoryLimit(-1); l > highest.Load() {
				highest.Store(l)
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	ok, err := password.Verify(hash, "correct horse battery staple")
	close(done)
	<-stopped
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if got := highest.Load(); got < defaultMemoryLimit+work {
		t.Errorf("memory limit during a %d MiB verification: %d MiB at most, want at least %d", work>>20, got>>20, (defaultMemoryLimit+work)>>20)
	}
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit {
		t.Errorf("memory limit after the verification: %d, want %d", got, defaultMemoryLimit)
	}
}
