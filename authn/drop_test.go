package authn_test

import (
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
)

func TestDropElevation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	pwd := authn.Verification{Factor: authn.Password, At: now.Add(-time.Hour)}
	otp := authn.Verification{Factor: authn.TOTP, At: now.Add(-time.Minute)}
	passkey := authn.Verification{Factor: authn.WebAuthn, At: now.Add(-time.Second), UV: true, Hardware: true}
	l := authn.DefaultLadder()
	cases := []struct {
		name   string
		verifs []authn.Verification
		want   []authn.Verification
	}{
		{"mfa session keeps its password", []authn.Verification{pwd, otp}, []authn.Verification{pwd}},
		{"password + passkey keeps the password", []authn.Verification{pwd, passkey}, []authn.Verification{pwd}},
		{"passwordless passkey loses UV and hardware", []authn.Verification{passkey}, []authn.Verification{{Factor: authn.WebAuthn, At: passkey.At}}},
		{"a lone TOTP stays", []authn.Verification{otp}, []authn.Verification{otp}},
		{"nothing stays nothing", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := l.DropElevation(c.verifs, now)
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
			}
			if sat := l.Satisfied(got, now); len(sat) > 1 || (len(sat) == 1 && sat[0] != authn.ACR1FA) {
				t.Fatalf("after dropping, %v still satisfied", sat)
			}
		})
	}
	// A ladder whose lowest level needs two factors: nothing is kept that
	// satisfies more than that lowest level, and 2 factors do satisfy it.
	two := authn.Ladder{{ACR: "two", Factors: 2}, {ACR: "phr", PhishingResistant: true, Factors: 1}}
	if got := two.DropElevation([]authn.Verification{pwd, passkey}, now); len(got) != 1 || got[0].Factor != authn.Password {
		t.Fatalf("custom ladder: %+v", got)
	}
}
