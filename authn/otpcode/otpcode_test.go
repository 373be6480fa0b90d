package otpcode_test

import (
	"bytes"
	"errors"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn/otpcode"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

var key = bytes.Repeat([]byte{7}, 32)

func TestIssueVerifyBinding(t *testing.T) {
	c, err := otpcode.New(sessiontest.NewStore(t), key, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := otpcode.Binding{Session: "s1", Purpose: "login:sms", To: "+15555550100"}
	code, err := c.Issue(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
		t.Fatalf("code %q is not 6 digits", code)
	}
	if _, err := c.Issue(t.Context(), b); !errors.Is(err, otpcode.ErrCooldown) {
		t.Fatalf("second Issue within the cooldown = %v, want ErrCooldown", err)
	}
	for _, other := range []otpcode.Binding{
		{Session: "s2", Purpose: b.Purpose, To: b.To},
		{Session: b.Session, Purpose: "enroll:sms", To: b.To},
		{Session: b.Session, Purpose: b.Purpose, To: "+15555550199"},
	} {
		if ok, err := c.Verify(t.Context(), other, code); ok || err != nil {
			t.Errorf("Verify under %+v = %v, %v; want false", other, ok, err)
		}
	}
	if ok, _ := c.Verify(t.Context(), b, "12345"); ok {
		t.Fatal("a 5-digit code passed")
	}
	if ok, err := c.Verify(t.Context(), b, code[:3]+" "+code[3:]); !ok || err != nil {
		t.Fatalf("Verify(right code) = %v, %v", ok, err)
	}
	if ok, _ := c.Verify(t.Context(), b, code); ok {
		t.Fatal("a code was accepted twice")
	}
	// Used: the cooldown is over, a new code may be sent at once.
	if _, err := c.Issue(t.Context(), b); err != nil {
		t.Fatalf("Issue after a used code: %v", err)
	}
}

func TestVerifyConcurrentOneWins(t *testing.T) {
	c, _ := otpcode.New(sessiontest.NewStore(t), key, time.Minute, time.Second)
	b := otpcode.Binding{Session: "s", Purpose: "login:email", To: "a@example.com"}
	code, err := c.Issue(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			<-start
			if ok, _ := c.Verify(t.Context(), b, code); ok {
				wins.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent submissions of one code won, want 1", wins.Load())
	}
}

func TestGenerateUsesEveryDigit(t *testing.T) {
	seen := map[byte]bool{}
	for range 200 {
		for _, d := range []byte(otpcode.Generate()) {
			seen[d] = true
		}
	}
	if len(seen) != 10 {
		t.Fatalf("digits seen in 1200 draws: %d, want 10", len(seen))
	}
	if _, err := otpcode.New(nil, []byte("short"), 0, 0); err == nil {
		t.Fatal("a short key was accepted")
	}
}
