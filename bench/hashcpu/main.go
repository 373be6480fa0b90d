// Command hashcpu measures the CPU one argon2id hash costs on this
// machine, to set a login's server CPU beside "the hash's own CPU in the
// same run" (docs/benchmarks.md, issue 18): run it while the load runs.
//
//	go run ./bench/hashcpu -duration 10s
//
// It hashes sequentially with password.DefaultParams, in a process that
// does nothing else, and prints the process's user+sys CPU per hash for
// golang.org/x/crypto/argon2.IDKey (fresh memory per hash, as every caller
// of that package gets) and then for the same hash through a
// password.Limiter (stepupd's way: the slot's memory reused), each for
// -duration.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/stepup-dev/stepup/authn/password"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	dur := flag.Duration("duration", 10*time.Second, "how long to hash for")
	flag.Parse()
	p := password.DefaultParams
	salt := make([]byte, p.SaltLen)
	measure := func(name string, hash func()) {
		hash() // warm up
		c0, t0, n := cpu(), time.Now(), 0
		for time.Since(t0) < *dur {
			hash()
			n++
		}
		c := cpu() - c0
		fmt.Printf("%s: %d hashes, %.2f ms CPU/hash, %.2f ms wall/hash (m=%d KiB t=%d p=%d)\n", name, n,
			float64(c.Microseconds())/1000/float64(n), float64(time.Since(t0).Microseconds())/1000/float64(n),
			p.MemoryKiB, p.Time, p.Threads)
	}
	measure("x/crypto argon2.IDKey", func() {
		argon2.IDKey([]byte("correct horse"), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	})
	l := password.NewLimiter(1)
	measure("password.Limiter (reused memory)", func() {
		if err := l.DummyVerify(context.Background(), "correct horse"); err != nil {
			panic(err)
		}
	})
}
