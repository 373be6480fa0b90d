package password

import (
	"context"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xargon2 "golang.org/x/crypto/argon2"

	"github.com/stepup-dev/stepup/authn/password/internal/argon2"
)

// cheap keeps tests fast; the algorithm is the same at any cost.
var cheap = Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerifyRoundTrip(t *testing.T) {
	phc, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=65536,t=1,p=2$") {
		t.Errorf("Hash = %q, want default parameters in the PHC string", phc)
	}
	ok, err := Verify(phc, "correct horse battery staple")
	if err != nil || !ok {
		t.Errorf("Verify(right password) = %v, %v; want true, nil", ok, err)
	}
	ok, err = Verify(phc, "correct horse battery stapler")
	if err != nil || ok {
		t.Errorf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
	if err := ParsePHC(phc); err != nil {
		t.Errorf("ParsePHC(Hash(...)) = %v", err)
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	a, _ := HashWith(cheap, "pw")
	b, _ := HashWith(cheap, "pw")
	if a == b {
		t.Error("two hashes of the same password are equal: salt is not random")
	}
}

func TestVerifyUsesParamsFromPHC(t *testing.T) {
	p := Params{Time: 3, MemoryKiB: 512, Threads: 4, SaltLen: 24, KeyLen: 48}
	phc, err := HashWith(p, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	h, err := parse(phc)
	if err != nil {
		t.Fatal(err)
	}
	if h.p != p {
		t.Errorf("parsed params = %+v, want %+v", h.p, p)
	}
	if ok, err := Verify(phc, "s3cret"); err != nil || !ok {
		t.Errorf("Verify = %v, %v; want true, nil", ok, err)
	}
	if ok, _ := Verify(phc, "S3cret"); ok {
		t.Error("Verify accepted a wrong password")
	}
}

func TestKnownAnswer(t *testing.T) {
	p := Params{Time: 2, MemoryKiB: 256, Threads: 1, SaltLen: 16, KeyLen: 32}
	salt := []byte("0123456789abcdef")
	pw := "correct horse battery staple"

	key := xargon2.IDKey([]byte(pw), salt, 2, 256, 1, 32)
	want := "$argon2id$v=19$m=256,t=2,p=1$" +
		base64.RawStdEncoding.EncodeToString(salt) + "$" +
		base64.RawStdEncoding.EncodeToString(key)
	got := hashWithSalt(nil, p, pw, salt)
	if got != want {
		t.Errorf("hashWithSalt = %q, want %q", got, want)
	}
	// Pinned so that a change in encoding or in the argon2 package shows up.
	const pinned = "$argon2id$v=19$m=256,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6v921DcCh4JgNTUk8Zy5XG6tyoURKEoHlKq0MC/5wLE"
	if got != pinned {
		t.Errorf("hashWithSalt = %q, want pinned %q", got, pinned)
	}
	if ok, err := Verify(pinned, pw); err != nil || !ok {
		t.Errorf("Verify(pinned) = %v, %v", ok, err)
	}
}

func TestMalformedPHC(t *testing.T) {
	const salt = "MDEyMzQ1Njc4OWFiY2RlZg"
	const key = "6v921DcCh4JgNTUk8Zy5XG6tyoURKEoHlKq0MC/5wLE"
	tests := []struct {
		name, phc string
		// imported: a format Verify accepts (CheckHash) but ParsePHC,
		// which checks configured hashes, does not.
		imported bool
	}{
		{"empty", "", false},
		{"plain text", "hunter2", false},
		{"argon2i", "$argon2i$v=19$m=256,t=2,p=1$" + salt + "$" + key, true},
		{"argon2d", "$argon2d$v=19$m=256,t=2,p=1$" + salt + "$" + key, false},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuuJ9dP0K4u5n3Fv0Vw7m3Yx0C2qkq7JdW", true},
		{"m·t over 1 GiB", "$argon2id$v=19$m=524288,t=3,p=1$" + salt + "$" + key, false},
		{"no leading $", "argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key, false},
		{"missing version", "$argon2id$m=256,t=2,p=1$" + salt + "$" + key, false},
		{"version 16", "$argon2id$v=16$m=256,t=2,p=1$" + salt + "$" + key, false},
		{"version garbage", "$argon2id$v=x$m=256,t=2,p=1$" + salt + "$" + key, false},
		{"params out of order", "$argon2id$v=19$t=2,m=256,p=1$" + salt + "$" + key, false},
		{"params missing p", "$argon2id$v=19$m=256,t=2$" + salt + "$" + key, false},
		{"extra param", "$argon2id$v=19$m=256,t=2,p=1,keyid=x$" + salt + "$" + key, false},
		{"leading zero", "$argon2id$v=19$m=0256,t=2,p=1$" + salt + "$" + key, false},
		{"negative", "$argon2id$v=19$m=-256,t=2,p=1$" + salt + "$" + key, false},
		{"plus sign", "$argon2id$v=19$m=+256,t=2,p=1$" + salt + "$" + key, false},
		{"t=0", "$argon2id$v=19$m=256,t=0,p=1$" + salt + "$" + key, false},
		{"t too large", "$argon2id$v=19$m=256,t=11,p=1$" + salt + "$" + key, false},
		{"p=0", "$argon2id$v=19$m=256,t=2,p=0$" + salt + "$" + key, false},
		{"p over uint8", "$argon2id$v=19$m=65536,t=2,p=256$" + salt + "$" + key, false},
		{"m below 8p", "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key, false},
		{"m over 1 GiB", "$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key, false},
		{"m over uint32", "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key, false},
		{"salt not base64", "$argon2id$v=19$m=256,t=2,p=1$!!!!$" + key, false},
		{"salt padded", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "==$" + key, false},
		{"salt too short", "$argon2id$v=19$m=256,t=2,p=1$YWJj$" + key, false},
		{"hash too short", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$YWJjZGVm", false},
		{"empty hash", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$", false},
		{"trailing field", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "$", false},
		{"line break in hash", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key[:10] + "\n" + key[10:], false},
		{"url-safe alphabet", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + strings.ReplaceAll(key, "/", "_"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ParsePHC(tt.phc)
			if !errors.Is(err, ErrMalformedHash) {
				t.Errorf("ParsePHC = %v, want ErrMalformedHash", err)
			}
			if tt.imported {
				return
			}
			ok, err := Verify(tt.phc, "pw")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if err != nil && strings.Contains(err.Error(), key) {
				t.Errorf("error %q repeats the hash", err)
			}
		})
	}
}

func TestHashWithRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{},
		{Time: 11, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 2 << 20, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 8},
	} {
		if _, err := HashWith(p, "pw"); err == nil {
			t.Errorf("HashWith(%+v) succeeded, want an error", p)
		}
	}
}

func TestDummyHashUsesDefaultParams(t *testing.T) {
	if dummy.p != DefaultParams {
		t.Errorf("dummy hash params = %+v, want DefaultParams %+v", dummy.p, DefaultParams)
	}
	DummyVerify("anything") // must not panic
}

func TestLimiterVerify(t *testing.T) {
	l := NewLimiter(2)
	phc, _ := HashWith(cheap, "pw")
	ctx := context.Background()
	if ok, err := l.Verify(ctx, phc, "pw"); err != nil || !ok {
		t.Errorf("Verify(right) = %v, %v", ok, err)
	}
	if ok, err := l.Verify(ctx, phc, "nope"); err != nil || ok {
		t.Errorf("Verify(wrong) = %v, %v", ok, err)
	}
	if _, err := l.Verify(ctx, "garbage", "pw"); !errors.Is(err, ErrMalformedHash) {
		t.Errorf("Verify(garbage) error = %v, want ErrMalformedHash", err)
	}
	if err := l.DummyVerify(ctx, "pw"); err != nil {
		t.Errorf("DummyVerify = %v", err)
	}
	if len(l.slots) != 0 || l.waiting.Load() != 0 {
		t.Errorf("slots or waiters leaked: %d, %d", len(l.slots), l.waiting.Load())
	}
}

func TestLimiterBusyWhenSaturated(t *testing.T) {
	l := NewLimiter(1)
	phc, _ := HashWith(cheap, "pw")
	l.slots <- struct{}{} // a hash in progress holds the only slot

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, queueFactor)
	for range queueFactor {
		wg.Go(func() {
			_, err := l.Verify(ctx, phc, "pw")
			errs <- err
		})
	}
	waitFor(t, func() bool { return l.waiting.Load() == queueFactor })

	start := time.Now()
	if _, err := l.Verify(context.Background(), phc, "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify with a full queue = %v, want ErrBusy", err)
	}
	if err := l.DummyVerify(context.Background(), "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("DummyVerify with a full queue = %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ErrBusy took %v, want an immediate answer", d)
	}

	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiter got %v, want context.Canceled", err)
		}
	}
	if l.waiting.Load() != 0 {
		t.Errorf("waiting = %d after cancel, want 0", l.waiting.Load())
	}

	<-l.slots // the held hash finishes
	if ok, err := l.Verify(context.Background(), phc, "pw"); err != nil || !ok {
		t.Errorf("Verify after the slot freed = %v, %v", ok, err)
	}
}

func TestLimiterWaitsUntilDeadline(t *testing.T) {
	l := NewLimiter(1)
	phc, _ := HashWith(cheap, "pw")
	l.slots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Verify(ctx, phc, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify = %v, want context.DeadlineExceeded", err)
	}
}

func TestLimiterSlotHandover(t *testing.T) {
	l := NewLimiter(1)
	phc, _ := HashWith(cheap, "pw")
	l.slots <- struct{}{}
	done := make(chan error, 1)
	go func() {
		_, err := l.Verify(context.Background(), phc, "pw")
		done <- err
	}()
	waitFor(t, func() bool { return l.waiting.Load() == 1 })
	<-l.slots
	if err := <-done; err != nil {
		t.Errorf("queued Verify = %v, want success once the slot is free", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo")
	f.Add("$argon2id$v=19$m=256,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6v921DcCh4JgNTUk8Zy5XG6tyoURKEoHlKq0MC/5wLE")
	f.Add("$argon2i$v=19$m=256,t=2,p=1$$")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parse error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		if err := h.p.validate(); err != nil {
			t.Fatalf("parse accepted out-of-bounds params: %v", err)
		}
		// A hash has exactly one spelling.
		if got := encode(h.p, h.salt, h.key); got != s {
			t.Fatalf("re-encoded %q as %q", s, got)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	phc, _ := Hash("correct horse battery staple")
	for b.Loop() {
		if _, err := Verify(phc, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLimiterBoundsWorkAreas: however many verifications come at once,
// the hashes run in at most one work area per slot, made once and reused
// (counted by the pool, not by timing), never in fresh memory; and the
// result is still the right one.
func TestLimiterBoundsWorkAreas(t *testing.T) {
	p := Params{Time: 1, MemoryKiB: 2048, Threads: 2, SaltLen: 16, KeyLen: 32}
	const slots = 3
	l := NewLimiterFor(slots, queueFactor*slots, p)
	if l.memKiB != DefaultParams.MemoryKiB {
		t.Fatalf("work areas of %d KiB, want DefaultParams' %d", l.memKiB, DefaultParams.MemoryKiB)
	}
	l.memKiB = p.MemoryKiB // keep the test's memory small
	phc, err := HashWith(p, "pw")
	if err != nil {
		t.Fatal(err)
	}
	fresh0, live0 := argon2.FreshAllocs(), argon2.LiveBytes()
	var wg sync.WaitGroup
	var wrong, busy atomic.Int64
	for round := range 8 {
		for i := range slots * (queueFactor + 1) {
			wg.Go(func() {
				pw := "pw"
				if (round+i)%3 == 0 {
					pw = "not it"
				}
				ok, err := l.Verify(context.Background(), phc, pw)
				switch {
				case errors.Is(err, ErrBusy):
					busy.Add(1)
				case err != nil || ok != (pw == "pw"):
					wrong.Add(1)
				}
			})
		}
		wg.Wait()
	}
	if err := l.DummyVerify(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if wrong.Load() != 0 {
		t.Errorf("%d verifications gave the wrong answer", wrong.Load())
	}
	if n := l.pooled.Load(); n < 1 || n > slots {
		t.Errorf("%d work areas made for %d slots", n, slots)
	}
	if n := argon2.FreshAllocs() - fresh0; n != 0 {
		t.Errorf("%d hashes ran in fresh memory instead of a slot's work area", n)
	}
	if got, max := argon2.LiveBytes()-live0, int64(slots)*int64(p.MemoryKiB)*1024; got > max {
		t.Errorf("work areas hold %d bytes, more than %d slots × %d KiB", got, slots, p.MemoryKiB)
	}
	t.Logf("%d work areas, %d answered busy", l.pooled.Load(), busy.Load())

	// A hash larger than the pool's areas gets one of its own, freed
	// right after.
	big := Params{Time: 1, MemoryKiB: 4096, Threads: 1, SaltLen: 16, KeyLen: 32}
	bigPHC, _ := HashWith(big, "pw")
	live1 := argon2.LiveBytes()
	if ok, err := l.Verify(context.Background(), bigPHC, "pw"); err != nil || !ok {
		t.Errorf("Verify(large hash) = %v, %v", ok, err)
	}
	if argon2.LiveBytes() != live1 {
		t.Errorf("a large hash's work area was kept: %d bytes live, was %d", argon2.LiveBytes(), live1)
	}
	// Hash through the limiter verifies with the package's Verify.
	h, err := l.Hash(context.Background(), p, "new")
	if ok, verr := Verify(h, "new"); err != nil || verr != nil || !ok {
		t.Errorf("Limiter.Hash gave %q (%v), Verify = %v, %v", h, err, ok, verr)
	}
	if n := l.pooled.Load(); n > slots {
		t.Errorf("%d work areas made for %d slots", n, slots)
	}
}

// TestLimiterReleasesIdleAreas: once no hash runs, the work areas' pages
// go back to the system (the areas stay, and the next hashes are still
// right); never while a hash holds one. Called directly, not by waiting
// for the idle timer.
func TestLimiterReleasesIdleAreas(t *testing.T) {
	p := Params{Time: 1, MemoryKiB: 1024, Threads: 1, SaltLen: 16, KeyLen: 32}
	l := NewLimiterFor(2, 8, p)
	l.memKiB = p.MemoryKiB
	phc, _ := HashWith(p, "pw")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { l.Verify(context.Background(), phc, "pw") })
	}
	wg.Wait()
	made := l.pooled.Load()
	l.busy() // a hash in flight
	if n := l.releaseIdle(); n != 0 {
		t.Errorf("released %d areas while a hash runs", n)
	}
	l.done()
	r0 := argon2.Releases()
	if n := l.releaseIdle(); n != int(made) || argon2.Releases()-r0 != made {
		t.Errorf("released %d areas (%d releases), want the %d made", n, argon2.Releases()-r0, made)
	}
	for _, pw := range []string{"pw", "other"} {
		if ok, err := l.Verify(context.Background(), phc, pw); err != nil || ok != (pw == "pw") {
			t.Errorf("after release, Verify(%q) = %v, %v", pw, ok, err)
		}
	}
	if l.pooled.Load() != made {
		t.Errorf("%d areas after release, want the same %d", l.pooled.Load(), made)
	}
	l.idleMu.Lock()
	if l.inFlight != 0 {
		t.Errorf("inFlight = %d after every hash ended", l.inFlight)
	}
	l.idleMu.Unlock()
}

func TestLimiterSlots(t *testing.T) {
	if n := NewLimiterFor(3, 0, DefaultParams).Slots(); n != 3 {
		t.Errorf("NewLimiterFor(3) has %d slots", n)
	}
	p := DefaultParams
	p.Threads = 2
	if n, want := NewLimiterFor(0, 0, p).Slots(), max(1, runtime.GOMAXPROCS(0)/2); n != want || DefaultSlots(p) != want {
		t.Errorf("automatic: %d slots (DefaultSlots %d), want one per 2 cores: %d", n, DefaultSlots(p), want)
	}
	p.Threads = 255
	if n := DefaultSlots(p); n != 1 {
		t.Errorf("DefaultSlots with more threads than cores = %d, want 1", n)
	}
}
