package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// testHash is a valid argon2id PHC string (authn/password's dummy hash).
const testHash = "$argon2id$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo"

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// problems returns the FieldErrors of err, failing the test if err is not
// an Errors.
func problems(t *testing.T, err error) Errors {
	t.Helper()
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want config.Errors: %v", err, err)
	}
	if len(es) == 0 {
		t.Fatalf("empty Errors returned as an error")
	}
	return es
}

func pathsOf(es Errors) []string {
	paths := make([]string, len(es))
	for i, e := range es {
		paths[i] = e.Path
	}
	return paths
}

// mustParse parses src, failing the test on error.
func mustParse(t *testing.T, src string, vars map[string]string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), env(vars))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return c
}

// parsePaths parses src, which must fail, and returns the error paths.
func parsePaths(t *testing.T, src string, vars map[string]string) (Errors, []string) {
	t.Helper()
	c, err := Parse([]byte(src), env(vars))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error; config %+v", c)
	}
	if c != nil {
		t.Errorf("Parse returned a config with its error")
	}
	es := problems(t, err)
	return es, pathsOf(es)
}

const minimal = "issuer: https://id.example.com\n"

func TestParseDefaults(t *testing.T) {
	c := mustParse(t, minimal+`
clients:
  - id: spa
    public: true
    redirect_uris: [http://localhost:5173/callback]
`, nil)
	d := func(s string) Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return Duration(v)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"redis embedded", c.Redis.Embedded(), true},
		{"keys.algorithm", c.Keys.Algorithm, "RS256"},
		{"keys.file", c.Keys.File, ""},
		{"session.idle_timeout", c.Session.IdleTimeout, d("30m")},
		{"session.absolute_timeout", c.Session.AbsoluteTimeout, d("12h")},
		{"levels", c.Levels, []Level{
			{ACR: "urn:stepup:loa:1fa", Factors: 1},
			{ACR: "http://schemas.openid.net/pape/policies/2007/06/multi-factor", Factors: 2, MaxAge: d("15m")},
			{ACR: "phr", Factors: 1, PhishingResistant: true, MaxAge: d("15m")},
			{ACR: "phrh", Factors: 1, PhishingResistant: true, Hardware: true, MaxAge: d("5m")},
		}},
		{"mfa.login", c.MFA.Login, "never"},
		{"mfa.unenrolled", c.MFA.Unenrolled, "allow_skip"},
		{"mfa.factors", c.MFA.Factors, []string{"totp", "webauthn", "sms", "email", "recovery"}},
		{"mfa.lockout.max_failures", c.MFA.Lockout.MaxFailures, 5},
		{"mfa.lockout.window", c.MFA.Lockout.Window, d("15m")},
		{"webauthn.rp_name", c.WebAuthn.RPName, "stepup"},
		{"webauthn.user_verification", c.WebAuthn.UserVerification, "preferred"},
		{"sms.provider", c.SMS.Provider, "log"},
		{"email.provider", c.Email.Provider, "log"},
		{"clients[0].grant_types", c.Clients[0].GrantTypes, []string{"authorization_code", "refresh_token"}},
		{"clients[0].unenrolled", c.Clients[0].Unenrolled, ""},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseDefaultsInsideGivenSections(t *testing.T) {
	c := mustParse(t, minimal+`
levels:
  - acr: low
  - acr: high
    factors: 2
sms:
  provider: twilio
  account_sid: AC1
  auth_token: ${TOKEN}
  from: "+15555550199"
mfa:
  lockout: { window: 1h }
`, map[string]string{"TOKEN": "t"})
	if got := []int{c.Levels[0].Factors, c.Levels[1].Factors}; !slices.Equal(got, []int{1, 2}) {
		t.Errorf("levels factors = %v, want [1 2] (factors defaults to 1)", got)
	}
	if c.SMS.BaseURL != "https://api.twilio.com" {
		t.Errorf("sms.base_url = %q, want the Twilio API", c.SMS.BaseURL)
	}
	if c.MFA.Lockout.MaxFailures != 5 || c.MFA.Lockout.Window.D() != time.Hour {
		t.Errorf("mfa.lockout = %+v, want max_failures 5 (default), window 1h", c.MFA.Lockout)
	}
}

func TestParseNullMeansDefault(t *testing.T) {
	c := mustParse(t, minimal+"listen:\nlevels: ~\nmfa:\n  factors: null\n", nil)
	if c.Listen != ":8080" || len(c.Levels) != 4 || len(c.MFA.Factors) != 5 {
		t.Errorf("null values did not take defaults: listen %q, %d levels, factors %v", c.Listen, len(c.Levels), c.MFA.Factors)
	}
}

// An explicit zero is the operator's choice: it is validated, never
// replaced by the default.
func TestParseExplicitZeroIsNotDefaulted(t *testing.T) {
	tests := []struct {
		name, yaml, path string
	}{
		{"max_failures 0", "mfa: {lockout: {max_failures: 0}}", "mfa.lockout.max_failures"},
		{"window 0s", "mfa: {lockout: {window: 0s}}", "mfa.lockout.window"},
		{"idle_timeout 0s", "session: {idle_timeout: 0s}", "session.idle_timeout"},
		{"empty listen", `listen: ""`, "listen"},
		{"empty levels", "levels: []", "levels"},
		{"factors 0", "levels: [{acr: x, factors: 0}]", "levels[0].factors"},
		{"empty algorithm", `keys: {algorithm: ""}`, "keys.algorithm"},
		{"empty rp_name", `webauthn: {rp_name: ""}`, "webauthn.rp_name"},
		{"empty grant_types", "clients: [{id: a, public: true, redirect_uris: [https://a.example/cb], grant_types: []}]", "clients[0].grant_types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, paths := parsePaths(t, minimal+tt.yaml+"\n", nil)
			if !slices.Equal(paths, []string{tt.path}) {
				t.Errorf("error paths = %q, want [%q]", paths, tt.path)
			}
		})
	}
	// An explicitly empty mfa.factors is allowed: password only.
	c := mustParse(t, minimal+"mfa: {factors: []}\n", nil)
	if c.MFA.Factors == nil || len(c.MFA.Factors) != 0 {
		t.Errorf("mfa.factors = %#v, want empty", c.MFA.Factors)
	}
}

func TestParseUnknownKeys(t *testing.T) {
	tests := []struct {
		name, yaml string
		path       string
		line       int
		hint       string
	}{
		{"top level", "isuer: https://x.example\n", "isuer", 2, "did you mean issuer?"},
		{"top level far from any key", "frobnicate: 1\n", "frobnicate", 2, ""},
		{"nested", "mfa:\n  lockout:\n    max_failure: 3\n", "mfa.lockout.max_failure", 4, "did you mean max_failures?"},
		{"in a list item", `clients:
  - id: spa
    public: true
    redirect_uris: [http://localhost:5173/cb]
  - id: web
    public: true
    redirect_uri: [http://localhost:5173/cb]
    redirect_uris: [http://localhost:5173/cb]
`, "clients[1].redirect_uri", 8, "did you mean redirect_uris?"},
		{"flow mapping", "sms: {provider: log, token: x}\n", "sms.token", 2, ""},
		{"odd key is quoted", "users: [{username: a, password: b, \"e mail\": x}]\n", `users[0]."e mail"`, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, paths := parsePaths(t, minimal+tt.yaml, nil)
			if !slices.Equal(paths, []string{tt.path}) {
				t.Fatalf("error paths = %q, want [%q]:\n%v", paths, tt.path, es)
			}
			e := es[0]
			if !strings.HasPrefix(e.Msg, "unknown key") || !strings.Contains(e.Msg, tt.hint) {
				t.Errorf("message %q, want unknown key with hint %q", e.Msg, tt.hint)
			}
			if e.Line != tt.line {
				t.Errorf("line = %d, want %d", e.Line, tt.line)
			}
			if !strings.Contains(e.Error(), tt.path+": unknown key") {
				t.Errorf("Error() = %q does not name the path", e.Error())
			}
		})
	}
}

// A typo of redirect_uris is reported as such, and so is the consequence:
// the client has no redirect URI.
func TestParseRedirectURITypo(t *testing.T) {
	es, paths := parsePaths(t, minimal+`clients:
  - id: spa
    public: true
    redirect_uri: [http://localhost:5173/callback]
`, nil)
	want := []string{"clients[0].redirect_uri", "clients[0].redirect_uris"}
	if !slices.Equal(paths, want) {
		t.Fatalf("error paths = %q, want %q:\n%v", paths, want, es)
	}
	if es[1].Line != 3 {
		t.Errorf("missing redirect_uris reported at line %d, want 3 (the client's)", es[1].Line)
	}
}

func TestParseReportsEveryError(t *testing.T) {
	data, err := os.ReadFile("testdata/many-errors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, env(nil))
	es := problems(t, err)
	want := []struct {
		path string
		line int
		msg  string
	}{
		// Decoding, in file order.
		{"sesion", 3, "unknown key; did you mean session?"},
		{"session.idle_timeout", 6, `"soon" is not a duration`},
		{"clients[0].redirect_uri", 15, "unknown key; did you mean redirect_uris?"},
		{"clients[1].secret", 17, "environment variable MISSING_SECRET is not set"},
		// Validation, in schema order.
		{"issuer", 2, "must be https"},
		{"levels[0].factors", 9, "4 must be 1, 2 or 3"},
		{"mfa.lockout.max_failures", 11, "0 must be at least 1"},
		{"clients[0].redirect_uris", 13, "required"},
		{"clients[1].redirect_uris[0]", 18, `"ftp://x" must be https, http on a loopback host, or a private-use scheme`},
		{"clients[1].redirect_uris[1]", 18, "must not have a fragment"},
		{"users[0].phone", 22, "must be an E.164 number"},
	}
	if len(es) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(es), len(want), es)
	}
	for i, w := range want {
		if i >= len(es) {
			break
		}
		e := es[i]
		if e.Path != w.path || e.Line != w.line || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d = %q (line %d), want %s: …%s… (line %d)", i, e.Error(), e.Line, w.path, w.msg, w.line)
		}
	}
	// The secret whose variable is missing is not also reported as absent.
	for _, e := range es {
		if e.Path == "clients[1].secret" && !strings.Contains(e.Msg, "MISSING_SECRET") {
			t.Errorf("spurious error for the unset secret: %v", e)
		}
	}
}

func TestParseEnvExpansion(t *testing.T) {
	vars := map[string]string{
		"SECRET": "s3cret",
		"HOST":   "bank.example.com",
		"DB":     "3",
		"IDLE":   "10m",
		"PUBLIC": "true",
		"DOLLAR": "$${NOT_EXPANDED}",
		"EMPTY":  "",
	}
	tests := []struct {
		name, yaml string
		get        func(*Config) any
		want       any
	}{
		{"whole value", "clients: [{id: b, secret: '${SECRET}', redirect_uris: [https://b.example/cb]}]",
			func(c *Config) any { return c.Clients[0].Secret }, "s3cret"},
		{"inside a value and a list", "clients: [{id: b, secret: x, redirect_uris: ['https://${HOST}/cb']}]",
			func(c *Config) any { return c.Clients[0].RedirectURIs[0] }, "https://bank.example.com/cb"},
		{"integer", "redis: {url: redis://r:6379, db: '${DB}'}",
			func(c *Config) any { return c.Redis.DB }, 3},
		{"quoted integer", `redis: {url: redis://r:6379, db: "${DB}"}`,
			func(c *Config) any { return c.Redis.DB }, 3},
		{"duration", "session: {idle_timeout: '${IDLE}'}",
			func(c *Config) any { return c.Session.IdleTimeout.D() }, 10 * time.Minute},
		{"boolean", "clients: [{id: b, public: '${PUBLIC}', redirect_uris: [https://b.example/cb]}]",
			func(c *Config) any { return c.Clients[0].Public }, true},
		{"$$ is a literal $", "users: [{username: a, password: 'pa$$word'}]",
			func(c *Config) any { return c.Users[0].Password }, "pa$word"},
		{"$${X} is not a reference", "users: [{username: a, password: '$${SECRET}'}]",
			func(c *Config) any { return c.Users[0].Password }, "${SECRET}"},
		{"a lone $ stays", "users: [{username: a, password: 'a$b$'}]",
			func(c *Config) any { return c.Users[0].Password }, "a$b$"},
		{"PHC strings need no escaping", "users: [{username: a, password_hash: '" + testHash + "'}]",
			func(c *Config) any { return c.Users[0].PasswordHash }, testHash},
		{"values are not expanded again", "users: [{username: a, password: '${DOLLAR}'}]",
			func(c *Config) any { return c.Users[0].Password }, "$${NOT_EXPANDED}"},
		{"set but empty", "users: [{username: a, password: x, name: '${EMPTY}'}]",
			func(c *Config) any { return c.Users[0].Name }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, minimal+tt.yaml+"\n", vars)
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseEnvErrors(t *testing.T) {
	tests := []struct {
		name, yaml, path, msg string
	}{
		{"unset", "clients: [{id: b, secret: '${BANK_CLIENT_SECRET}', redirect_uris: [https://b.example/cb]}]",
			"clients[0].secret", "environment variable BANK_CLIENT_SECRET is not set"},
		{"unset in a list", "clients: [{id: b, public: true, redirect_uris: [https://a.example/cb, 'https://${NOPE}/cb']}]",
			"clients[0].redirect_uris[1]", "environment variable NOPE is not set"},
		{"unset in a duration", "session: {idle_timeout: '${IDLE}'}",
			"session.idle_timeout", "environment variable IDLE is not set"},
		{"unterminated", "users: [{username: a, password: 'x${OOPS'}]",
			"users[0].password", "unterminated ${"},
		{"empty name", "users: [{username: a, password: 'x${}'}]",
			"users[0].password", "invalid environment variable name"},
		{"bad name", "users: [{username: a, password: '${A-B}'}]",
			"users[0].password", `invalid environment variable name "A-B"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, paths := parsePaths(t, minimal+tt.yaml+"\n", nil)
			if !slices.Equal(paths, []string{tt.path}) || !strings.Contains(es[0].Msg, tt.msg) {
				t.Errorf("errors:\n%v\nwant only %s: …%s…", es, tt.path, tt.msg)
			}
		})
	}
}

// Keys are not expanded: ${X} as a key is an unknown key, not a lookup.
func TestParseEnvNotInKeys(t *testing.T) {
	_, paths := parsePaths(t, minimal+"${LISTEN_KEY}: x\n", map[string]string{"LISTEN_KEY": "listen"})
	if !slices.Equal(paths, []string{`"${LISTEN_KEY}"`}) {
		t.Errorf("paths = %q, want the literal key", paths)
	}
}

func TestParseDurations(t *testing.T) {
	good := map[string]time.Duration{"90s": 90 * time.Second, "15m": 15 * time.Minute, "12h": 12 * time.Hour, "1h30m": 90 * time.Minute}
	for in, want := range good {
		c := mustParse(t, minimal+"session: {idle_timeout: "+in+", absolute_timeout: 24h}\n", nil)
		if got := c.Session.IdleTimeout.D(); got != want {
			t.Errorf("%s → %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{"90", "soon", "1d", "[15m]", "{a: 1}", "15 m"} {
		es, paths := parsePaths(t, minimal+"session: {idle_timeout: "+in+"}\n", nil)
		if !slices.Equal(paths, []string{"session.idle_timeout"}) {
			t.Errorf("%s: paths %q, want only session.idle_timeout:\n%v", in, paths, es)
		}
	}
}

func TestParseTypeErrors(t *testing.T) {
	tests := []struct {
		name, yaml, path, msg string
	}{
		{"list for a string only", "listen: [a]", "listen", "want a string, got a list"},
		{"mapping for a list", "clients: {id: a}", "clients", "want a list, got a mapping"},
		{"scalar for a mapping", "mfa: strict", "mfa", "want a mapping"},
		{"bad bool", "clients: [{id: a, public: maybe, redirect_uris: [https://a.example/cb]}]", "clients[0].public", `want true or false, got "maybe"`},
		{"bad int", "redis: {url: redis://r, db: first}", "redis.db", `want an integer, got "first"`},
		{"float for int", "mfa: {lockout: {max_failures: 2.5}}", "mfa.lockout.max_failures", "want an integer"},
		{"quoted int", `mfa: {lockout: {max_failures: "5"}}`, "mfa.lockout.max_failures", "want an integer"},
		{"scalar for a list", "mfa: {factors: totp}", "mfa.factors", "want a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, paths := parsePaths(t, minimal+tt.yaml+"\n", nil)
			// One error: what Validate would add about the zero value
			// left behind is suppressed.
			if !slices.Equal(paths, []string{tt.path}) || !strings.Contains(es[0].Msg, tt.msg) {
				t.Errorf("errors:\n%v\nwant only %s: …%s…", es, tt.path, tt.msg)
			}
		})
	}
}

func TestParseRequiresIssuer(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n", "listen: :9000\n"} {
		es, paths := parsePaths(t, src, nil)
		if !slices.Equal(paths, []string{"issuer"}) {
			t.Errorf("%q: errors\n%v\nwant issuer required", src, es)
		}
	}
}

func TestParseSyntaxError(t *testing.T) {
	es, paths := parsePaths(t, minimal+"clients:\n  - id: a\n   bad indent: [\n", nil)
	if !slices.Equal(paths, []string{""}) || es[0].Line == 0 || !strings.HasPrefix(es[0].Msg, "invalid YAML") {
		t.Errorf("errors %#v, want one invalid YAML error with a line", es[0])
	}
}

func TestParseOneDocument(t *testing.T) {
	es, _ := parsePaths(t, minimal+"---\nlisten: :9000\n", nil)
	if len(es) != 1 || !strings.Contains(es[0].Msg, "more than one YAML document") || es[0].Line != 3 {
		t.Errorf("errors %v, want one about a second document at line 3", es)
	}
	mustParse(t, minimal+"---\n", nil) // a trailing separator is harmless
}

func TestParseDuplicateKey(t *testing.T) {
	es, paths := parsePaths(t, minimal+"listen: :1\nlisten: :2\n", nil)
	if !slices.Equal(paths, []string{"listen"}) || !strings.Contains(es[0].Msg, "duplicate key (first at line 2)") || es[0].Line != 3 {
		t.Errorf("errors %v, want a duplicate listen at line 3", es)
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	c, err := Load("testdata/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Client{
		{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:5173/callback"},
			PostLogoutRedirectURIs: []string{"http://localhost:5173/"}, GrantTypes: []string{"authorization_code", "refresh_token"}},
		{ID: "cli", Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"},
			PostLogoutRedirectURIs: []string{"http://localhost:5173/"}, GrantTypes: []string{"authorization_code", "refresh_token"}},
	}
	if !reflect.DeepEqual(c.Clients, want) {
		t.Errorf("clients = %+v\nwant %+v", c.Clients, want)
	}
}

func TestParseSelfMerge(t *testing.T) {
	// A mapping that merges itself must be an error, not a hang.
	es, _ := parsePaths(t, minimal+"mfa: &m\n  login: never\n  lockout:\n    <<: *m\n", nil)
	if len(es) == 0 {
		t.Fatal("no error")
	}
}

// Aliases let a small file name a subtree very many times; decoding stops
// at a bound instead of using unbounded time and memory.
func TestParseAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "users:\n  - &u {username: a, password: b, email: a@example.com, phone: '+15555550100', name: A}\n")
	b.WriteString("clients:\n  - &c\n    id: c\n    public: true\n    redirect_uris: &r [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("https://a.example/cb")
	}
	b.WriteString("]\n")
	for range 1000 {
		b.WriteString("  - *c\n")
	}
	es, _ := parsePaths(t, b.String(), nil)
	if !slices.ContainsFunc(es, func(e *FieldError) bool { return strings.Contains(e.Msg, "too many values") }) {
		t.Errorf("no bound reached; %d errors", len(es))
	}
}

func TestParseProductExample(t *testing.T) {
	data, err := os.ReadFile("testdata/product-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"BANK_CLIENT_SECRET": "bank-secret", "ALICE_PASSWORD": "alice-password"}
	c, err := Parse(data, env(vars))
	if err != nil {
		t.Fatalf("PRODUCT.md §4 example:\n%v", err)
	}
	if c.Clients[1].Secret != "bank-secret" || c.Users[0].Password != "alice-password" {
		t.Errorf("secrets not taken from the environment: %q, %q", c.Clients[1].Secret, c.Users[0].Password)
	}
	if !reflect.DeepEqual(c.Levels, DefaultLevels()) {
		t.Errorf("the example's ladder differs from DefaultLevels:\n%+v", c.Levels)
	}
	if c.Redis.URL != "redis://localhost:6379/0" || c.Users[0].Phone != "+15555550100" || c.Clients[1].MinACR != ACRMultiFactor {
		t.Errorf("unexpected values: %+v", c)
	}
	if got := c.PlainSecrets(); len(got) != 0 {
		t.Errorf("PlainSecrets = %q, want none (both secrets come from ${ENV})", got)
	}
	// Without the variables, both are reported.
	_, err = Parse(data, nil)
	if got := pathsOf(problems(t, err)); !slices.Equal(got, []string{"clients[1].secret", "users[0].password"}) {
		t.Errorf("without the environment: paths %q", got)
	}
}

// Every yaml key of the schema reaches its field. every-key.yaml sets each
// key to a non-zero value; decoding it (without validation, which the file
// would fail) must leave no field zero.
func TestDecodeEveryKey(t *testing.T) {
	data, err := os.ReadFile("testdata/every-key.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root, ferr := parseYAML(data)
	if ferr != nil {
		t.Fatal(ferr)
	}
	d := &decoder{getenv: env(nil), given: map[string]bool{}, lines: map[string]int{}, bad: map[string]bool{}, fromEnv: map[string]bool{}, budget: maxNodes}
	var c Config
	d.decode(root, "", reflect.ValueOf(&c).Elem())
	if len(d.errs) > 0 {
		t.Fatalf("decode errors:\n%v", d.errs)
	}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				if f := v.Type().Field(i); f.IsExported() {
					walk(v.Field(i), path+"."+f.Name)
				}
			}
		case reflect.Slice:
			if v.Len() == 0 {
				t.Errorf("%s is empty", path)
			}
			for i := range v.Len() {
				walk(v.Index(i), path)
			}
		default:
			if v.IsZero() {
				t.Errorf("%s is zero", path)
			}
		}
	}
	walk(reflect.ValueOf(c), "Config")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stepup.yaml")
	if err := os.WriteFile(path, []byte(minimal+"listen: ${STEPUP_TEST_LISTEN}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STEPUP_TEST_LISTEN", "127.0.0.1:9999")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" {
		t.Errorf("listen = %q, want it from the environment", c.Listen)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestPlainSecrets(t *testing.T) {
	c := mustParse(t, minimal+`
redis: {url: redis://r:6379, password: "${REDIS_PASSWORD}"}
email: {provider: smtp, addr: "smtp.example.com:587", from: id@example.com, username: u, password: plain-smtp}
clients:
  - {id: a, secret: plain, redirect_uris: [https://a.example/cb]}
  - {id: b, secret: "${B_SECRET}", redirect_uris: [https://b.example/cb]}
  - {id: c, secret_hash: "`+testHash+`", redirect_uris: [https://c.example/cb]}
  - {id: d, public: true, redirect_uris: [https://d.example/cb]}
users:
  - {username: alice, password: plain}
  - {username: bob, password: "pre-${BOB}"}
  - {username: carol, password_hash: "`+testHash+`"}
`, map[string]string{"REDIS_PASSWORD": "r", "B_SECRET": "b", "BOB": "b"})
	want := []string{"email.password", "clients[0].secret", "users[0].password"}
	if got := c.PlainSecrets(); !slices.Equal(got, want) {
		t.Errorf("PlainSecrets = %q, want %q", got, want)
	}
}

// Error messages never repeat a secret: they end up in logs.
func TestErrorsDoNotLeakSecrets(t *testing.T) {
	const secret = "hunter2-SECRET"
	src := minimal + `
redis: {url: "http://user:` + secret + `@r:6379/0"}
clients:
  - {id: a, secret_hash: "$argon2id$v=19$m=65536,t=1,p=2$` + secret + `", redirect_uris: [https://a.example/cb]}
  - {id: b, public: true, secret: ` + secret + `, redirect_uris: [https://b.example/cb]}
users:
  - {username: alice, password: ` + secret + `, password_hash: "$argon2id$` + secret + `", totp_secret: ` + secret + `}
`
	_, err := Parse([]byte(src), nil)
	es := problems(t, err)
	if len(es) < 5 {
		t.Errorf("want at least 5 errors, got:\n%v", es)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("errors repeat the secret:\n%v", err)
	}
}

func TestErrorsFormat(t *testing.T) {
	es := Errors{
		{Path: "clients[1].redirect_uris[0]", Msg: `"ftp://x" must be https`, Line: 12},
		{Path: "issuer", Msg: "required"},
		{Msg: "invalid YAML: bad", Line: 3},
	}
	want := "clients[1].redirect_uris[0]: \"ftp://x\" must be https (line 12)\nissuer: required\ninvalid YAML: bad (line 3)"
	if got := es.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	var fe *FieldError
	if !errors.As(error(es), &fe) || fe.Path != "clients[1].redirect_uris[0]" {
		t.Errorf("errors.As does not find the first FieldError")
	}
}

func TestDurationYAML(t *testing.T) {
	d := Duration(90 * time.Minute)
	v, err := d.MarshalYAML()
	if err != nil || v != "1h30m0s" {
		t.Errorf("MarshalYAML = %v, %v", v, err)
	}
	var back Duration
	if err := back.UnmarshalYAML(yamlScalar(v.(string))); err != nil || back != d {
		t.Errorf("round trip: %v, %v", back, err)
	}
	if err := back.UnmarshalYAML(yamlScalar("90")); err == nil {
		t.Errorf("a bare number was accepted")
	}
}

func yamlScalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
