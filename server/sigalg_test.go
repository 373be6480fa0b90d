package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/rs"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// withES256Client adds the public client "es", registered with
// id_token_signed_response_alg ES256.
func withES256Client(c *config.Config) {
	c.Clients = append(c.Clients, config.Client{
		ID: "es", Public: true, RedirectURIs: []string{rpCallback},
		PostLogoutRedirectURIs:   []string{"http://127.0.0.1:9/bye"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		IDTokenSignedResponseAlg: "ES256",
	})
}

// newTwoKeyEnv is a server with the clients "spa" (RS256 ID tokens, the
// default) and "es" (ES256), an rs-protected API per client (audience
// the client), and an RP per client whose go-oidc accepts only its
// client's ID token algorithm: what the key rotation and revocation
// tests log in with.
func newTwoKeyEnv(t *testing.T) (*env, map[string]*httptest.Server, map[string]*rp) {
	t.Helper()
	e := newEnv(t, withES256Client)
	apis := map[string]*httptest.Server{}
	for _, c := range []string{"spa", "es"} {
		v, err := rs.New(rs.Config{Issuer: e.issuer, Audience: c, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		apis[c] = bankAPI(t, v)
	}
	return e, apis, map[string]*rp{"spa": e.rpWithAlgs("spa", "RS256"), "es": e.rpWithAlgs("es", "ES256")}
}

// rpWithAlgs is e.rp whose go-oidc verifier accepts only algs.
func (e *env) rpWithAlgs(clientID string, algs ...string) *rp {
	r := e.rp(clientID, "")
	prov, err := oidc.NewProvider(r.ctx, e.issuer)
	if err != nil {
		e.t.Fatal(err)
	}
	r.verifier = prov.Verifier(&oidc.Config{ClientID: clientID, Now: e.clock.Now, SupportedSigningAlgs: algs})
	return r
}

// jwksAlgs counts the keys of each alg in the published JWKS.
func jwksAlgs(t *testing.T, e *env) map[string]int {
	t.Helper()
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Alg string `json:"alg"`
			Use string `json:"use"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, k := range set.Keys {
		if k.Use != "sig" {
			t.Fatalf("a key of use %q", k.Use)
		}
		out[k.Alg]++
	}
	return out
}

// TestIDTokenAlgorithmPerClient (issue 18 item 4): ID tokens are signed
// with the client's registered id_token_signed_response_alg, RS256 for a
// client that registered none (OIDC Core §3.1.3.7); access tokens with
// ES256 for both, accepted by rs, userinfo and introspection; discovery
// lists both algorithms and the JWKS publishes both keys; an ID token of
// either algorithm is a valid id_token_hint.
func TestIDTokenAlgorithmPerClient(t *testing.T) {
	e := newEnv(t, withES256Client)
	ctx := context.Background()

	resp, err := http.Get(e.issuer + op.PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || !slices.Equal(disc.Algs, []string{"RS256", "ES256"}) {
		t.Fatalf("discovery id_token_signing_alg_values_supported %v (%v), want [RS256 ES256]", disc.Algs, err)
	}
	if got := jwksAlgs(t, e); got["RS256"] != 1 || got["ES256"] != 1 || len(got) != 2 {
		t.Fatalf("JWKS keys by alg %v, want one RS256 and one ES256", got)
	}

	for _, c := range []struct{ client, alg, other string }{
		{"spa", "RS256", "ES256"}, // registered nothing: OIDC's default
		{"es", "ES256", "RS256"},
	} {
		// go-oidc accepting only the client's algorithm verifies the ID token.
		tk := signIn(t, e, e.browser(), e.rpWithAlgs(c.client, c.alg), nil, "bob", bobPass)
		if h := jwtHeader(t, tk.idToken); h["alg"] != c.alg || h["typ"] != "JWT" {
			t.Fatalf("%s: ID token header %v, want alg %s", c.client, h, c.alg)
		}
		// ... and one accepting only the other algorithm refuses it.
		if _, err := e.rpWithAlgs(c.client, c.other).verifier.Verify(ctx, tk.idToken); err == nil {
			t.Fatalf("%s: a verifier accepting only %s took its ID token", c.client, c.other)
		}
		if h := jwtHeader(t, tk.tok.AccessToken); h["alg"] != "ES256" || h["typ"] != "at+jwt" {
			t.Fatalf("%s: access token header %v, want ES256 at+jwt", c.client, h)
		}
		v, err := rs.New(rs.Config{Issuer: e.issuer, Audience: c.client, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		callAPI(t, "GET", bankAPI(t, v).URL+"/balance", tk.tok.AccessToken).want(t, c.client+": rs", 200, "")
		if s := userinfoStatus(t, e, tk.tok.AccessToken); s != http.StatusOK {
			t.Fatalf("%s: userinfo %d", c.client, s)
		}
		if _, in := e.postForm("/oauth/introspect", url.Values{"token": {tk.tok.AccessToken}}, "bank", bankSecret); in["active"] != true {
			t.Fatalf("%s: introspection %v", c.client, in)
		}
		// The ID token is a hint end_session verifies: it redirects back
		// without asking the user, which a forged hint does not get.
		if !logoutRedirects(t, e, tk.idToken) {
			t.Fatalf("%s: end_session did not take its ID token as id_token_hint", c.client)
		}
		if logoutRedirects(t, e, tk.idToken[:len(tk.idToken)-4]+"AAAA") {
			t.Fatalf("%s: end_session took a forged id_token_hint", c.client)
		}
	}
}

// A deployment that chose keys.algorithm ES256 keeps ES256 ID tokens for
// the clients that registered nothing (its relying parties were set up
// for them); a client may still register RS256, which discovery lists.
func TestKeysAlgorithmIsTheDefaultIDTokenAlgorithm(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Keys.Algorithm = "ES256"
		withES256Client(c)
		c.Clients[len(c.Clients)-1].IDTokenSignedResponseAlg = "RS256"
	})
	for client, alg := range map[string]string{"spa": "ES256", "es": "RS256"} {
		tk := signIn(t, e, e.browser(), e.rpWithAlgs(client, alg), nil, "bob", bobPass)
		if h := jwtHeader(t, tk.idToken); h["alg"] != alg {
			t.Fatalf("%s: ID token alg %v, want %s", client, h["alg"], alg)
		}
		if h := jwtHeader(t, tk.tok.AccessToken); h["alg"] != "ES256" {
			t.Fatalf("%s: access token alg %v, want ES256", client, h["alg"])
		}
	}
}

// logoutRedirects reports whether end_session with hint redirects to the
// client's post-logout URI at once.
func logoutRedirects(t *testing.T, e *env, hint string) bool {
	t.Helper()
	bye := "http://127.0.0.1:9/bye"
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(e.issuer + op.PathEndSession + "?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}, "state": {"s"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return strings.HasPrefix(resp.Header.Get("Location"), bye)
}

// With keys.file the keys are the file's: a client registering an
// algorithm the file has no key for is refused at start, naming its path;
// a file with keys of both algorithms serves both.
func TestKeysFileClientAlgorithm(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, algs ...string) string {
		var out []byte
		for _, a := range algs {
			var key any
			var err error
			if a == "ES256" {
				key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			} else {
				key, err = rsa.GenerateKey(rand.Reader, 2048)
			}
			if err != nil {
				t.Fatal(err)
			}
			der, _ := x509.MarshalPKCS8PrivateKey(key)
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	cfg, err := config.Parse([]byte(strings.ReplaceAll(baseConfig, "ISSUER", "http://127.0.0.1:9")), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	withES256Client(cfg)
	cfg.Keys.Algorithm, cfg.Keys.File = "RS256", write("rsa.pem", "RS256")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	backend := sessiontest.NewBackend(t)
	_, err = server.New(context.Background(), cfg, backend.Store(t), server.Options{Log: discardLog()})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("clients[%d].id_token_signed_response_alg", len(cfg.Clients)-1)) {
		t.Fatalf("a client's ES256 with an RSA key file alone: %v", err)
	}
	cfg.Keys.File = write("both.pem", "ES256", "RS256")
	if _, err := server.New(context.Background(), cfg, backend.Store(t), server.Options{Log: discardLog()}); err != nil {
		t.Fatalf("a file with both keys: %v", err)
	}
}
