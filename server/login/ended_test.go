package login

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/i18n"
	"github.com/stepup-dev/stepup/server/op"
)

// Issue 15: a reset that runs out mid-step, or meets another account's
// passkey, says so in a reset's words (en and de), not an approval's
// ("no longer waiting for your approval", "asked to approve").
func TestResetFlowWording(t *testing.T) {
	status, msg := endedAnswer(op.ErrResetEnded)
	if status != http.StatusBadRequest || msg != "forgot.expired" {
		t.Errorf("ended reset: %d %q", status, msg)
	}
	if status, msg := endedAnswer(op.ErrApprovalEnded); status != http.StatusGone || msg != "error.ciba_ended" {
		t.Errorf("ended approval: %d %q", status, msg)
	}
	reset := &op.Flow{Reset: &op.Reset{}}
	if got := otherPasskeyMsg(reset); got != "passkey.other_account_reset" {
		t.Errorf("another account's passkey in a reset: %q", got)
	}
	if got := otherPasskeyMsg(&op.Flow{CIBA: &op.CIBAApproval{}}); got != "passkey.other_account" {
		t.Errorf("another account's passkey in an approval: %q", got)
	}
	for _, lang := range []string{"en", "de"} {
		l := i18n.For(lang)
		for _, key := range []string{msg, otherPasskeyMsg(reset)} {
			text := l.T(key)
			if text == key || text == "" {
				t.Errorf("%s: %q has no text", lang, key)
			}
			for _, ciba := range []string{"approv", "genehmig"} {
				if strings.Contains(strings.ToLower(text), ciba) {
					t.Errorf("%s: %q speaks of an approval: %q", lang, key, text)
				}
			}
		}
	}
}
