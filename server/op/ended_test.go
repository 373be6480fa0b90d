package op

import (
	"context"
	"errors"
	"testing"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// Issue 15: a reset's flow that can no longer record a verification
// (another account's session, or gone) ends as a reset (ErrResetEnded),
// so its page does not speak of an approval; it still is an ended flow
// that keeps its verifications (ErrApprovalEnded) to every other check.
func TestRecordVerificationEndedFlows(t *testing.T) {
	p := &Provider{}
	other := &session.Session{ID: "x", Subject: "someone-else"}
	v := authn.Verification{Factor: authn.TOTP}
	reset := &Flow{ID: "r", HintSubject: "bob", Reset: &Reset{}}
	err := p.RecordVerification(context.Background(), nil, reset, other, v)
	if !errors.Is(err, ErrResetEnded) || !errors.Is(err, ErrApprovalEnded) {
		t.Errorf("reset flow: %v, want ErrResetEnded (an ErrApprovalEnded)", err)
	}
	ciba := &Flow{ID: "c", HintSubject: "bob", CIBA: &CIBAApproval{}}
	err = p.RecordVerification(context.Background(), nil, ciba, nil, v)
	if !errors.Is(err, ErrApprovalEnded) || errors.Is(err, ErrResetEnded) {
		t.Errorf("CIBA flow: %v, want ErrApprovalEnded only", err)
	}
}
