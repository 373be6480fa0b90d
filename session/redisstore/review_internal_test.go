package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// The other one-time consumptions must not be re-sent by go-redis either
// (see once.go): a one-time step-up grant, a recovery code and a WebAuthn
// ceremony run twice would answer "already used" to the legitimate
// caller (and count a valid recovery code as a failure).
func TestOneTimeConsumptionsAreNeverResent(t *testing.T) {
	s := openEmbedded(t)
	h := &sentHook{}
	s.c.AddHook(h)
	ctx := t.Context()
	g := &session.StepUpGrant{Subject: "u", Action: "pay", ClientID: "bank", OneTime: true, ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.PutStepUpGrant(ctx, "gh", g); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedAccount(ctx, &session.Account{Subject: "u", Username: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecoveryCodes(ctx, "u", []string{"r1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChallenge(ctx, "challenge-0123456789abcdef", []byte("cer"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, flushFirst := range []bool{false, true} {
		ops := map[string]func() (bool, error){
			"UseStepUpGrant": func() (bool, error) {
				_, ok, err := s.UseStepUpGrant(ctx, "gh", "u", "pay", "bank", time.Now())
				return ok, err
			},
			"UseRecoveryCode": func() (bool, error) { return s.UseRecoveryCode(ctx, "u", "r1") },
			"TakeChallenge": func() (bool, error) {
				b, err := s.TakeChallenge(ctx, "challenge-0123456789abcdef")
				if errorsIsNotFound(err) {
					return false, nil
				}
				return string(b) == "cer", err
			},
		}
		for name, op := range ops {
			if flushFirst {
				if err := s.c.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			h.take()
			ok, err := op()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// Each is consumed by the first round only.
			if ok == flushFirst {
				t.Errorf("%s (round %v): got %v", name, flushFirst, ok)
			}
			sent := h.take()
			if len(sent) == 0 {
				t.Fatalf("%s sent nothing", name)
			}
			for _, c := range sent {
				if !c.noRetry {
					t.Errorf("%s sent %s, which go-redis may re-send", name, c.name)
				}
			}
		}
	}
}

func errorsIsNotFound(err error) bool { return err != nil && errors.Is(err, session.ErrNotFound) }
