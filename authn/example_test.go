package authn_test

import (
	"fmt"
	"time"

	"github.com/stepup-dev/stepup/authn"
)

// A relying party asks for multi-factor on a password session: the user is
// asked only for the missing factor, then gets an ID token that says so.
func ExampleLadder_Evaluate() {
	ladder := authn.DefaultLadder()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	acct := authn.Account{
		HasPassword: true,
		Enrolled:    []authn.Enrollment{{Factor: authn.TOTP}, {Factor: authn.SMS}},
	}
	req := authn.Request{ACRValues: []string{authn.ACRMFA}, Start: now}
	session := []authn.Verification{{Factor: authn.Password, At: now.Add(-time.Minute)}}

	d := ladder.Evaluate(req, session, acct, now)
	fmt.Println(d.Outcome, d.Need, d.Alternatives)

	// The hosted page verified the TOTP code.
	now = now.Add(20 * time.Second)
	session = append(session, authn.Verification{Factor: authn.TOTP, At: now})
	d = ladder.Evaluate(req, session, acct, now)
	fmt.Println(d.Outcome, d.ACR, d.AMR, d.AuthTime.Equal(now))
	// Output:
	// Need [totp] [sms]
	// OK http://schemas.openid.net/pape/policies/2007/06/multi-factor [pwd otp mfa] true
}
