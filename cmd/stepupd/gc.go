package main

import (
	"runtime/debug"
	"sync"

	"github.com/stepup-dev/stepup/authn/password"
)

// The garbage collector's settings stepupd runs with when the operator
// sets neither GOGC nor GOMEMLIMIT (either one given leaves both to the
// Go runtime, as documented there).
//
// stepupd's live heap is small (3–8 MB under the bench modes; argon2's
// work areas are mapped outside the Go heap) and its requests allocate
// (≈ 17 KB per client_credentials token, half of it inside
// crypto/ecdsa), so with Go's default GOGC=100 it collects every few
// megabytes: background marking was 7–8 % of a client_credentials
// request's CPU (perf, docs/benchmarks.md, issue 18). GOGC=400 lets the
// heap grow to five times the live heap between collections (a quarter
// of the cycles); the soft limit caps the Go runtime's memory so that
// growth cannot take a server past issue 18's RSS bound (≤ 150 MiB
// under login load, where one argon2id work area of 64 MiB is resident
// besides the heap). Near the limit the runtime collects more often (at
// most half the CPU on collection, then it lets the heap pass the
// limit): a live heap that approached the limit would cost more GC than
// GOGC=100; GOMEMLIMIT or GOGC in the environment is the way out.
//
// A password hash that works on the Go heap (an imported scrypt hash:
// 64 MiB at passlib's default cost, up to 256 MiB; an argon2id hash no
// pooled work area fits, such as an imported one with more memory than
// the configured parameters) would put the live heap past the limit for
// the whole hash; the limit is raised by its work area while it runs
// (heapWorkLimit, password.SetHeapWork).
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 48 << 20
)

var (
	heapWorkMu    sync.Mutex
	heapWorkBytes int64
)

// heapWorkLimit is told by the password package the heap a hash takes
// (delta > 0) and gives back (delta < 0): the soft limit is
// defaultMemoryLimit plus what the hashes running hold.
func heapWorkLimit(delta int64) {
	heapWorkMu.Lock()
	defer heapWorkMu.Unlock()
	heapWorkBytes += delta
	debug.SetMemoryLimit(defaultMemoryLimit + max(heapWorkBytes, 0))
}

// setGCDefaults applies defaultGCPercent and defaultMemoryLimit unless
// getenv gives GOGC or GOMEMLIMIT, and reports whether it did.
func setGCDefaults(getenv func(string) string) bool {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(defaultGCPercent)
	debug.SetMemoryLimit(defaultMemoryLimit)
	password.SetHeapWork(heapWorkLimit)
	return true
}
