package rp_test

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/rp"
	"github.com/stepup-dev/stepup/rs"
)

// The challenges of RFC 9470 §3 (figures 2 and 3) and RFC 6750 §3.
var rfcChallenges = []string{
	`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"`,
	`Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"`,
	`Bearer realm="example"`,
	`Bearer realm="example", error="invalid_token", error_description="The access token expired"`,
}

func TestParseChallenge(t *testing.T) {
	cases := []struct {
		name, header string
		want         rp.Challenge
	}{
		{"RFC 9470 §3 acr_values", rfcChallenges[0], rp.Challenge{Error: "insufficient_user_authentication", Description: "A different authentication level is required", ACRValues: []string{"myACR"}}},
		{"RFC 9470 §3 max_age", rfcChallenges[1], rp.Challenge{Error: "insufficient_user_authentication", Description: "More recent authentication is required", MaxAge: 5, HasMaxAge: true}},
		{"RFC 6750 §3 realm", rfcChallenges[2], rp.Challenge{Realm: "example"}},
		{"RFC 9470 folded over lines, token max_age", "Bearer error=\"insufficient_user_authentication\",\n  error_description=\"x\",\t acr_values=\"a b\", max_age=300",
			rp.Challenge{Error: "insufficient_user_authentication", Description: "x", ACRValues: []string{"a", "b"}, MaxAge: 300, HasMaxAge: true}},
		{"RFC 9110 §11.6.1 other schemes first", `Basic realm="x", Newauth realm="apps", type=1, title="Login to \"apps\"", bearer error="invalid_token"`,
			rp.Challenge{Error: "invalid_token"}},
		{"token68 scheme before", `Negotiate abc/def==, Bearer scope="a b"`, rp.Challenge{Scope: "a b"}},
		{"bare Bearer", `Bearer`, rp.Challenge{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := rp.ParseChallenge(strings.ReplaceAll(c.header, "\n", " "))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Fatalf("got %+v\nwant %+v", *got, c.want)
			}
		})
	}
	for _, bad := range []string{``, `Basic realm="x"`, `Bearer error="unterminated`, `Bearer max_age="-1"`, `Bearer max_age="1e3"`, `Bearer error="a", error="b"`} {
		if c, err := rp.ParseChallenge(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, *c)
		}
	}
}

func TestNewAuthRequest(t *testing.T) {
	cfg := &oauth2.Config{ClientID: "bank", RedirectURL: "https://bank.example/cb", Endpoint: oauth2.Endpoint{AuthURL: "https://id.example/authorize"}, Scopes: []string{"openid"}}
	ch, err := rp.ParseChallenge(rs.Challenge{Error: rs.ErrInsufficientUserAuthentication, ACRValues: []string{"urn:a", "urn:b"}, MaxAge: 300, HasMaxAge: true}.String())
	if err != nil {
		t.Fatal(err)
	}
	a := rp.NewAuthRequest(cfg, ch)
	other := rp.NewAuthRequest(cfg, ch)
	if a.State == other.State || a.Nonce == other.Nonce || a.Verifier == other.Verifier {
		t.Fatal("two requests share a state, nonce or verifier")
	}
	u := strings.SplitN(a.URL, "?", 2)[1]
	for _, want := range []string{"acr_values=urn%3Aa+urn%3Ab", "max_age=300", "code_challenge_method=S256", "nonce=" + a.Nonce, "state=" + a.State, "client_id=bank"} {
		if !strings.Contains(u, want) {
			t.Errorf("%s lacks %s", a.URL, want)
		}
	}
	if strings.Contains(u, a.Verifier) {
		t.Error("the PKCE verifier leaked into the URL")
	}
	plain := rp.NewAuthRequest(cfg, nil)
	if strings.Contains(plain.URL, "acr_values") || strings.Contains(plain.URL, "max_age") {
		t.Errorf("a plain sign-in asks for a level: %s", plain.URL)
	}
}

// FuzzChallengeRoundTrip: whatever a resource server puts in a challenge,
// rs renders a header that rp parses back to the same values (after the
// renderer's documented clean-up), and rp never fails on rs's output.
func FuzzChallengeRoundTrip(f *testing.F) {
	f.Add("", "insufficient_user_authentication", "A different authentication level is required", "myACR", int64(-1), "")
	f.Add("", "insufficient_user_authentication", "More recent authentication is required", "", int64(5), "")
	f.Add("example", "invalid_token", "The access token expired", "", int64(-1), "")
	f.Add("r\"e\\alm", "insufficient_scope", "quote \" back\\slash, comma", "a  b\tc", int64(0), "stepup:grants x")
	f.Fuzz(func(t *testing.T, realm, code, desc, acrs string, maxAge int64, scope string) {
		in := rs.Challenge{Realm: realm, Error: code, Description: desc, ACRValues: strings.Fields(acrs), MaxAge: maxAge, HasMaxAge: maxAge >= 0, Scope: scope}
		header := in.String()
		got, err := rp.ParseChallenge(header)
		if err != nil {
			t.Fatalf("rp cannot parse rs's %q: %v", header, err)
		}
		// The renderer keeps visible ASCII and spaces (tabs become spaces).
		clean := func(s string) string {
			var b strings.Builder
			for i := 0; i < len(s); i++ {
				switch c := s[i]; {
				case c == '\t':
					b.WriteByte(' ')
				case c >= 0x20 && c < 0x7f:
					b.WriteByte(c)
				}
			}
			return b.String()
		}
		// A parameter that is blank once cleaned is not sent.
		param := func(s string) string {
			if s = clean(s); strings.TrimSpace(s) == "" {
				return ""
			}
			return s
		}
		want := rp.Challenge{Realm: param(realm), Error: param(code), Description: param(desc), ACRValues: strings.Fields(clean(strings.Join(in.ACRValues, " "))), MaxAge: maxAge, HasMaxAge: maxAge >= 0, Scope: param(scope)}
		if !in.HasMaxAge {
			want.MaxAge = 0
		}
		if len(want.ACRValues) == 0 {
			want.ACRValues = nil
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q parsed as %+v, want %+v", header, *got, want)
		}
	})
}

// FuzzParseChallenge: any header either fails cleanly or parses to a
// challenge that survives rendering and parsing again unchanged.
func FuzzParseChallenge(f *testing.F) {
	for _, h := range rfcChallenges {
		f.Add(h)
	}
	f.Add(`Basic realm="x", Newauth realm="apps", type=1, title="Login to \"apps\"", Bearer error="invalid_token"`)
	f.Add(`Negotiate abc/def==, Bearer scope="a b"`)
	f.Fuzz(func(t *testing.T, header string) {
		c, err := rp.ParseChallenge(header)
		if err != nil {
			return
		}
		out := toRS(c).String()
		again, err := rp.ParseChallenge(out)
		if err != nil {
			t.Fatalf("%q → %q no longer parses: %v", header, out, err)
		}
		if toRS(again).String() != out {
			t.Fatalf("%q → %q → %q", header, out, toRS(again).String())
		}
	})
}

func toRS(c *rp.Challenge) rs.Challenge {
	return rs.Challenge{Realm: c.Realm, Error: c.Error, Description: c.Description, ACRValues: c.ACRValues, MaxAge: c.MaxAge, HasMaxAge: c.HasMaxAge, Scope: c.Scope}
}
