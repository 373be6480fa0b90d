package op

import (
	"context"
	"reflect"
	"testing"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/session"
)

type nopSender struct{}

func (nopSender) Send(context.Context, notify.Message) error { return nil }

// A session's view describes the account to the policy exactly as the
// account does (PolicyAccount), for every combination of the factors it
// names, so that a step-up decided from it shows the page the account
// would; a view that does not parse is no view.
func TestAccountViewIsPolicyAccount(t *testing.T) {
	p := &Provider{factors: []string{"totp", "sms", "email", "recovery"}, sms: nopSender{}, email: nopSender{},
		enrollable: []authn.Factor{authn.TOTP}}
	for mask := range 1 << 7 {
		a := &session.Account{Subject: "s", Username: "alice"}
		if mask&1 != 0 {
			a.PasswordHash = "$argon2id$x"
		}
		if mask&2 != 0 {
			a.TOTPSecret = "JBSWY3DPEHPK3PXP"
		}
		if mask&4 != 0 {
			a.Phone = "+15555550100"
		}
		if mask&8 != 0 {
			a.Email = "a@example.com"
		}
		if mask&16 != 0 {
			a.EmailMFA = true
		}
		if mask&32 != 0 {
			a.RecoveryCodes = 3
		}
		for _, last := range []authn.Factor{"", authn.Password, authn.TOTP, authn.SMS, authn.Recovery} {
			a.LastFactor = last
			v := p.AccountView(a)
			bits, ok := parseView(v)
			if n, _ := p.names.get("s"); !ok || n != "alice" {
				t.Fatalf("view %q of %+v does not parse", v, a)
			}
			want, got := p.PolicyAccount(a), p.viewPolicy(bits, nil)
			if want.LastUsed == authn.Password {
				want.LastUsed = "" // the view names second factors only; the policy offers them alike
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("account %+v: view %q gives %+v, want %+v", a, v, got, want)
			}
			if (bits&viewEmailMFA != 0) != a.EmailMFA {
				t.Fatalf("view %q: email codes %v, want %v", v, !a.EmailMFA, a.EmailMFA)
			}
			if !SameView(v, p.AccountView(&session.Account{Subject: "s", Username: "alice", PasswordHash: a.PasswordHash, TOTPSecret: a.TOTPSecret,
				Phone: a.Phone, Email: a.Email, EmailMFA: a.EmailMFA, RecoveryCodes: a.RecoveryCodes, LastFactor: authn.SMS})) {
				t.Fatalf("views differing in the last factor only are not the same")
			}
		}
	}
	if SameView(p.AccountView(&session.Account{Username: "a", TOTPSecret: "X"}), p.AccountView(&session.Account{Username: "a"})) {
		t.Fatal("views with and without TOTP are the same")
	}
	for _, bad := range []string{"", "1:alice", "a", "99999999", "-1", " 1"} {
		if _, ok := parseView(bad); ok {
			t.Errorf("parseView(%q) ok", bad)
		}
	}
	// The session's latest second factor orders the factors.
	bits, _ := parseView(p.AccountView(&session.Account{Username: "a", TOTPSecret: "X", RecoveryCodes: 1, LastFactor: authn.TOTP}))
	if got := p.viewPolicy(bits, []authn.Verification{{Factor: authn.Recovery}}).LastUsed; got != authn.Recovery {
		t.Errorf("last used %q, want the session's latest verification's (recovery)", got)
	}
}
