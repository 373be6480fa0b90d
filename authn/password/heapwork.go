package password

import "github.com/stepup-dev/stepup/authn/password/internal/argon2"

// SetHeapWork sets f to be told, before a verification takes a work area
// of n bytes on the Go heap, f(n), and after it, f(-n); nil unsets it.
// argon2's pooled work areas are mapped outside the heap
// (internal/argon2), but x/crypto/scrypt allocates its own: an imported
// scrypt hash at passlib's default cost (ln=16) holds 64 MiB of heap
// while it runs. stepupd, when
// it sets its own soft memory limit, raises the limit by that much
// meanwhile (cmd/stepupd/gc.go), so that the collector does not run back
// to back for the length of the hash.
//
// argon2 hashes tell it too when their work area is on the heap: one in
// fresh memory (a hash whose memory no pooled work area fits, or
// Verify's), or a pooled one where memory cannot be mapped outside it.
func SetHeapWork(f func(delta int64)) { argon2.SetHeapWork(f) }

// onHeap tells SetHeapWork's function that n bytes of heap are taken,
// and returns what tells it they are given back (one function for
// argon2's work areas and the imported hashes', kept by internal/argon2).
func onHeap(n int64) (done func()) { return argon2.OnHeap(n) }
