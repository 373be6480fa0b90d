package recovery_test

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stepup-dev/stepup/authn/recovery"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

var shape = regexp.MustCompile(`^[a-hj-km-np-z02-9]{4}-[a-hj-km-np-z02-9]{4}-[a-hj-km-np-z02-9]{4}$`)

func seeded(t *testing.T) (session.Store, string) {
	t.Helper()
	s := sessiontest.NewStore(t)
	a, err := s.SeedAccount(t.Context(), &session.Account{Subject: "sub-" + t.Name(), Username: "u-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return s, a.Subject
}

func TestGenerateConsumeOnce(t *testing.T) {
	s, sub := seeded(t)
	codes := recovery.New(s)
	list, err := codes.Generate(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != recovery.Count {
		t.Fatalf("%d codes, want %d", len(list), recovery.Count)
	}
	seen := map[string]bool{}
	for _, c := range list {
		if !shape.MatchString(c) || seen[c] {
			t.Fatalf("code %q: bad shape or repeated (%v)", c, list)
		}
		seen[c] = true
	}
	if n, err := codes.Count(t.Context(), sub); err != nil || n != recovery.Count {
		t.Fatalf("Count = %d, %v", n, err)
	}
	// The store holds hashes only.
	a, _ := s.GetAccount(t.Context(), sub)
	if a.RecoveryCodes != recovery.Count {
		t.Fatalf("account shows %d codes", a.RecoveryCodes)
	}
	for _, c := range list {
		if ok, _ := s.UseRecoveryCode(t.Context(), sub, c); ok {
			t.Fatal("the store accepted a code in clear: it must hold hashes")
		}
	}

	// Typed with capitals, spaces and no dashes, and "o" for the zero.
	typed := strings.ToUpper(strings.ReplaceAll(list[3], "-", " "))
	typed = strings.ReplaceAll(typed, "0", "O")
	for i, want := range []bool{true, false} {
		ok, err := codes.Consume(t.Context(), sub, typed)
		if err != nil || ok != want {
			t.Fatalf("use %d of one code = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if n, _ := codes.Count(t.Context(), sub); n != recovery.Count-1 {
		t.Fatalf("after one use: %d left", n)
	}
	for _, bad := range []string{"", "abcd-efgh", "abcd-efgh-jkm!", list[4] + "x", "1bcd-efgh-jkmn"} {
		if ok, err := codes.Consume(t.Context(), sub, bad); ok || err != nil {
			t.Errorf("Consume(%q) = %v, %v", bad, ok, err)
		}
	}
	// Another user's subject does not take this user's codes.
	if ok, _ := codes.Consume(t.Context(), "someone-else", list[5]); ok {
		t.Fatal("a code worked for another subject")
	}
}

func TestRegenerateReplaces(t *testing.T) {
	s, sub := seeded(t)
	codes := recovery.New(s)
	old, err := codes.Generate(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := codes.Generate(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := codes.Consume(t.Context(), sub, old[0]); ok {
		t.Fatal("a code of the replaced set still works")
	}
	if ok, _ := codes.Consume(t.Context(), sub, fresh[0]); !ok {
		t.Fatal("a new code does not work")
	}
	if _, err := codes.Generate(t.Context(), "no-such-user"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Generate for an unknown subject = %v, want ErrNotFound", err)
	}
}

func TestConsumeConcurrentOneWins(t *testing.T) {
	s, sub := seeded(t)
	codes := recovery.New(s)
	list, err := codes.Generate(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			ok, err := codes.Consume(t.Context(), sub, list[0])
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of %d concurrent uses of one code won, want 1", wins, n)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"abcd-efgh-jkmn":    "abcd-efgh-jkmn",
		" ABCD EFGH JKMN ":  "abcd-efgh-jkmn",
		"abcdefghjkmn":      "abcd-efgh-jkmn",
		"abcd-efgh-jkmo":    "abcd-efgh-jkm0",
		"abcd-efgh-jkmn-ab": "",
		"abcd-efgh-jkml":    "",
	} {
		got, ok := recovery.Normalize(in)
		if got != want || ok != (want != "") {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
