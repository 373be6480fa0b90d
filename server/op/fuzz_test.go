package op

import (
	"cmp"
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
)

// Fuzz targets for the parsers of the authorization request: everything in
// it is chosen by whoever builds the URL, not by the registered client.
// Seeds are the examples of OIDC Core §3.1.2.1 and §5.5 and RFC 7636
// §4.2/Appendix B. `go test -fuzz FuzzX ./server/op` explores further;
// crashers found that way land in testdata/fuzz/FuzzX and run with
// every `go test`.

const fuzzMFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// FuzzParseClaimsACR: the claims parameter (OIDC Core §5.5). Whatever it
// returns must come from the input: a parser that invents an acr value
// would have the user step up (or not) for a level nobody asked for.
func FuzzParseClaimsACR(f *testing.F) {
	// OIDC Core §5.5, the non-normative example.
	f.Add(`{"userinfo":{"given_name":{"essential":true},"nickname":null,"email":{"essential":true},"email_verified":{"essential":true},"picture":null,"http://example.info/claims/groups":null},"id_token":{"auth_time":{"essential":true},"acr":{"values":["urn:mace:incommon:iap:silver"]}}}`)
	// §5.5.1.1: acr with value, with essential, and null.
	f.Add(`{"id_token":{"acr":{"essential":true,"value":"urn:mace:incommon:iap:silver"}}}`)
	f.Add(`{"id_token":{"acr":null}}`)
	f.Add(`{"userinfo":{"acr":{"values":["phr","phrh"]}}}`)
	f.Add(`{"id_token":{"acr":{"essential":true}}}`)
	f.Add(`{"id_token":{"acr":{"values":[]}},"userinfo":{"acr":{"value":"x"}}}`)
	f.Add(`{"id_token":null}`)
	f.Add(`{"id_token":{"acr":{"value":null,"values":null}}}`)
	f.Add(`[]`)
	f.Add(`{"id_token":{"acr":{"values":["a",1]}}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		values, essential, present, err := parseClaimsACR(raw)
		if err != nil {
			if values != nil || essential || present {
				t.Fatalf("error %v with a result %q %v %v", err, values, essential, present)
			}
			return
		}
		if !json.Valid([]byte(raw)) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		if !present {
			if len(values) != 0 || essential {
				t.Fatalf("not present, yet values %q essential %v", values, essential)
			}
			return
		}
		if len(values) == 0 && !essential {
			t.Fatal("present without values or essential")
		}
		if essential && !strings.Contains(raw, "essential") {
			t.Fatalf("essential without the word in %q", raw)
		}
		// Every value is a JSON string of the input.
		for _, v := range values {
			if !jsonStringIn(raw, v) {
				t.Fatalf("value %q is not in the input %q", v, raw)
			}
		}
	})
}

// jsonStringIn reports whether raw holds a JSON string that decodes to v
// (escapes such as \u0061 make a plain substring test miss it).
func jsonStringIn(raw, v string) bool {
	dec := json.NewDecoder(strings.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); ok && s == v {
			return true
		}
	}
}

// FuzzParseFlow: the whole authorization request, as a query string
// (prompt, max_age, acr_values, claims, PKCE, scope, response_type…).
// Properties: no panic; an error is a registered OAuth error code; an
// accepted request says exactly what was asked (prompt=none alone,
// max_age a non-negative integer given in the request, acr values from
// acr_values or claims, openid among the scopes, S256 PKCE or none).
func FuzzParseFlow(f *testing.F) {
	// OIDC Core §3.1.2.1's example request, with PKCE (RFC 7636 Appendix B).
	f.Add("response_type=code&scope=openid%20profile%20email&client_id=s6BhdRkqt3&state=af0ifjsldkj&redirect_uri=https%3A%2F%2Fclient.example.org%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	f.Add("response_type=code&scope=openid&prompt=none&max_age=0&acr_values=phr%20" + url.QueryEscape(fuzzMFA))
	f.Add("response_type=code&scope=openid&prompt=login%20consent&max_age=300&nonce=n-0S6_WzA2Mj")
	f.Add("response_type=code&scope=openid&prompt=none%20login")
	f.Add("response_type=code&scope=openid&max_age=-1")
	f.Add("response_type=code&scope=openid&max_age=99999999999999999999")
	f.Add("response_type=code&scope=openid&acr_values=a&claims=" + url.QueryEscape(`{"id_token":{"acr":{"essential":true,"values":["phr"]}}}`))
	f.Add("response_type=code&scope=openid&claims=%7B")
	f.Add("response_type=code&scope=openid&max_age=1&max_age=2")
	f.Add("response_type=code%20id_token&scope=openid&response_mode=fragment")
	f.Add("response_type=code&scope=openid&request=eyJhbGciOiJub25lIn0.e30.")
	f.Add("response_type=code&scope=openid&code_challenge=abc&code_challenge_method=plain")
	f.Add("scope=openid%20offline_access%20stepup:admin&response_type=code&ui_locales=fr-CA%20fr%20en")

	public := newClient(config.Client{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:5173/cb"}}, "")
	confidential := newClient(config.Client{ID: "bank", Secret: "s", RedirectURIs: []string{"https://bank.example.com/cb"}, Scopes: []string{"stepup:grants"}}, "")
	now := time.Unix(1_700_000_000, 0)
	registered := map[string]bool{
		errInvalidRequest: true, "invalid_scope": true, "unsupported_response_type": true,
		"request_not_supported": true, "request_uri_not_supported": true, "registration_not_supported": true,
	}
	f.Fuzz(func(t *testing.T, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return // the HTTP layer rejects it before parseFlow
		}
		for _, c := range []*Client{public, confidential} {
			fl, aerr := parseFlow(form, c, now)
			if aerr != nil {
				if fl != nil {
					t.Fatal("flow returned with an error")
				}
				if !registered[aerr.code] || aerr.desc == "" {
					t.Fatalf("error %q %q is not a registered OAuth error with a description", aerr.code, aerr.desc)
				}
				continue
			}
			checkFlow(t, form, c, fl)
		}
	})
}

func checkFlow(t *testing.T, form url.Values, c *Client, fl *Flow) {
	t.Helper()
	if form.Get("response_type") != "code" {
		t.Fatalf("accepted response_type %q", form.Get("response_type"))
	}
	if !slices.Contains(strings.Fields(form.Get("scope")), "openid") || !slices.Contains(fl.Scopes, "openid") {
		t.Fatalf("accepted scope %q → %q without openid", form.Get("scope"), fl.Scopes)
	}
	for _, s := range fl.Scopes {
		if !slices.Contains(oidcScopes, s) && !slices.Contains(c.cfg.Scopes, s) {
			t.Fatalf("scope %q granted to client %s", s, c.GetID())
		}
	}
	prompts := strings.Fields(form.Get("prompt"))
	if fl.PromptNone && len(prompts) != 1 {
		t.Fatalf("prompt=none combined: %q", form.Get("prompt"))
	}
	if fl.PromptNone != slices.Contains(prompts, "none") {
		t.Fatalf("PromptNone %v for prompt %q", fl.PromptNone, form.Get("prompt"))
	}
	wantLogin := slices.Contains(prompts, "login") || slices.Contains(prompts, "select_account")
	if fl.PromptLogin != wantLogin {
		t.Fatalf("PromptLogin %v for prompt %q", fl.PromptLogin, form.Get("prompt"))
	}
	if v := form.Get("max_age"); v == "" {
		if fl.MaxAge != nil {
			t.Fatal("max_age set without the parameter")
		}
	} else if strings.TrimLeft(v, "0123456789") != "" {
		t.Fatalf("max_age %q accepted: only digits are a non-negative integer", v)
	} else if digits := cmp.Or(strings.TrimLeft(v, "0"), "0"); fl.MaxAge == nil || *fl.MaxAge < 0 || *fl.MaxAge > MaxAgeCeiling ||
		(*fl.MaxAge < MaxAgeCeiling && strconv.FormatInt(*fl.MaxAge, 10) != digits) ||
		(*fl.MaxAge == MaxAgeCeiling && len(digits) < len("9223372036")) {
		// The value itself, or the ceiling for anything at or above it.
		t.Fatalf("max_age %q → %v", v, fl.MaxAge)
	}
	if raw := form.Get("claims"); raw == "" {
		if !slices.Equal(fl.ACRValues, strings.Fields(form.Get("acr_values"))) || fl.Essential {
			t.Fatalf("acr_values %q → %q essential %v", form.Get("acr_values"), fl.ACRValues, fl.Essential)
		}
	} else {
		values, essential, present, err := parseClaimsACR(raw)
		if err != nil {
			t.Fatalf("accepted claims %q: %v", raw, err)
		}
		if present && (!slices.Equal(fl.ACRValues, values) || fl.Essential != essential) {
			t.Fatalf("claims %q → %q essential %v", raw, fl.ACRValues, fl.Essential)
		}
	}
	ch := form.Get("code_challenge")
	if ch != fl.CodeChallenge || (ch != "" && (form.Get("code_challenge_method") != "S256" || !pkceChallenge.MatchString(ch))) {
		t.Fatalf("PKCE %q %q accepted", ch, form.Get("code_challenge_method"))
	}
	if c.Public() && ch == "" {
		t.Fatal("public client without PKCE accepted")
	}
	for _, name := range []string{"request", "request_uri", "registration"} {
		if form.Get(name) != "" {
			t.Fatalf("%s accepted", name)
		}
	}
}

// FuzzRedirectURIAllowed: redirect_uri matching decides where codes go.
// An exact match, or else (RFC 8252 §7.3) the same http loopback IP
// literal, path and query with any port — never another host, scheme,
// path, userinfo or fragment.
func FuzzRedirectURIAllowed(f *testing.F) {
	reg := []string{"https://client.example.org/cb", "http://127.0.0.1/cb?x=1", "http://[::1]:8080/native", "com.example.app:/oauth2redirect"}
	for _, s := range []string{
		"https://client.example.org/cb", "https://client.example.org/cb/", "https://client.example.org:443/cb",
		"http://127.0.0.1:51004/cb?x=1", "http://127.0.0.1:51004/cb?x=2", "http://127.0.0.1.example.com/cb?x=1",
		"http://user@127.0.0.1:1/cb?x=1", "http://127.0.0.1:1/cb?x=1#f", "http://[::1]:1/native", "http://[::1%25eth0]:1/native",
		"http://localhost:1/cb?x=1", "com.example.app:/oauth2redirect", "com.example.app://oauth2redirect", "",
		"HTTP://127.0.0.1:1/cb?x=1", "http://127.1:1/cb?x=1", "http://0x7f.0.0.1/cb?x=1", "http://127.0.0.1:1/%63b?x=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if !uriRegistered(reg, uri) {
			return
		}
		if slices.Contains(reg, uri) {
			return
		}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("unparsable %q allowed", uri)
		}
		if u.Scheme != "http" || u.User != nil || u.Fragment != "" || net.ParseIP(u.Hostname()) == nil || !net.ParseIP(u.Hostname()).IsLoopback() {
			t.Fatalf("%q allowed by the loopback rule", uri)
		}
		for _, r := range reg {
			ru, _ := url.Parse(r)
			if ru.Scheme == "http" && ru.Hostname() == u.Hostname() && ru.Path == u.Path && ru.RawQuery == u.RawQuery {
				return
			}
		}
		t.Fatalf("%q allowed, matching no registered URI but in port", uri)
	})
}
