// Command floor is the lower bound of issue 18's CPU targets: a server
// that answers the HTTP requests the bench tool (`go run ./bench`) makes in
// its `stepup`, `sso` and `cc` modes with the same status codes, redirect
// shapes and about the same body sizes as stepupd, doing only the work
// those requests cannot do without — parse the request, the same Redis
// round trips with the same number of top-level commands each (plain
// commands, or a minimal script where two writes must be one), the same
// SQL account reads (one primary-key SELECT on SQLite, the TOTP secret
// sealed with AES-GCM as stepupd stores it), the TOTP HMAC, the ES256
// signatures (two per code exchange, one per client_credentials grant), a
// page written from constant pieces with its few values escaped, one audit
// line per event (a write(2) to stderr) — and none of stepupd's logic
// (policy, ladders, i18n, templates, middleware, metrics).
//
//	go run ./bench -write-config DIR -issuer http://127.0.0.1:PORT -users 500 -id-token-alg ES256
//	go run ./bench/floor -secrets DIR/bench-secrets.json -redis 127.0.0.1:RPORT -db /tmp/floor.db 2>/tmp/floor.audit &
//	go run ./bench -secrets DIR/bench-secrets.json -mode stepup,sso,cc -pid FLOORPID,REDISPID -redis 127.0.0.1:RPORT
//
// The password sign-in the bench does before timing (to make the sessions
// it steps up or reuses) compares a SHA-256 of the password, not argon2id:
// it is set-up, never part of a measured operation.
//
// `-fold` serves the step-up in a shorter structure (3 requests, 6 round
// trips, 1 SQL read) that the bench's stepup mode also accepts, to
// measure what a flow of that shape would cost at the floor; `-rt3`
// shortens it to 3 round trips (one script per request) and the SSO to
// 2, with keys of several Cluster slots in one script: one Redis node.
//
// `-micro` measures the pieces in process instead (see micro.go).
package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"
)

// mfaACR is the level the bench's stepup mode asks for.
const mfaACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// secrets is what `bench -write-config` writes beside stepup.yaml.
type secrets struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RedirectURI  string `json:"redirect_uri"`
	Password     string `json:"password"`
	Users        []struct {
		Username   string `json:"username"`
		TOTPSecret string `json:"totp_secret"`
	} `json:"users"`
}

func main() {
	secretsPath := flag.String("secrets", "", "bench-secrets.json from `go run ./bench -write-config` (issuer, client, users)")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis host:port")
	dbPath := flag.String("db", "", "SQLite file for the accounts (created and filled from -secrets; default a temporary file)")
	micro := flag.Bool("micro", false, "measure the pieces in process (ES256, TOTP, SQL read, Redis round trips) and exit")
	n := flag.Int("n", 20000, "-micro: repetitions of each piece")
	redisPID := flag.String("redis-pid", "", "-micro: redis-server's pid, to add its CPU per command")
	rt3 := flag.Bool("rt3", false, "with -fold, the step-up in 3 round trips: the post's reads, budget, step claim, elevation and code in one script, the exchange's take and grant write in one; and SSO in 2 (/authorize in one script) (keys on several Cluster slots: one Redis node only)")
	fold := flag.Bool("fold", false, "the step-up in another structure: /authorize answers with the TOTP page itself (3 HTTP requests, not 4), its session read and flow write in one round trip (6, not 8), the account read once (at the post)")
	flag.Parse()
	if *micro {
		if err := runMicro(*redisAddr, *redisPID, *n); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*secretsPath, *redisAddr, *dbPath, *fold || *rt3, *rt3); err != nil {
		log.Fatal(err)
	}
}

func run(secretsPath, redisAddr, dbPath string, fold, rt3 bool) error {
	raw, err := os.ReadFile(secretsPath)
	if err != nil {
		return err
	}
	var sec secrets
	if err := json.Unmarshal(raw, &sec); err != nil {
		return fmt.Errorf("%s: %w", secretsPath, err)
	}
	u, err := url.Parse(sec.Issuer)
	if err != nil || u.Port() == "" || net.ParseIP(u.Hostname()) == nil || !net.ParseIP(u.Hostname()).IsLoopback() {
		return fmt.Errorf("issuer %q: want http://127.0.0.1:PORT", sec.Issuer)
	}
	if dbPath == "" {
		f, err := os.CreateTemp("", "floor-*.db")
		if err != nil {
			return err
		}
		f.Close()
		dbPath = f.Name()
		defer os.Remove(dbPath)
	}
	s, err := newServer(&sec, redisAddr, dbPath)
	if err != nil {
		return err
	}
	s.fold, s.rt3 = fold, rt3
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return err
	}
	log.Printf("floor listening on %s (issuer %s, %d users, -fold %v, -rt3 %v)", u.Host, sec.Issuer, len(sec.Users), fold, rt3)
	return (&http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// server is the floor: one client, the users of -secrets.
type server struct {
	issuer, clientID, redirectURI string
	secretSum                     [32]byte // SHA-256 of the client secret
	passwordSum                   [32]byte // SHA-256 of the users' password (set-up only)
	rdb                           *redis.Client
	db                            *sql.DB
	bySub, byName                 *sql.Stmt
	key                           *ecdsa.PrivateKey
	kid                           string
	aead                          cipher.AEAD // seals the TOTP secrets at rest
	csrfKey                       []byte
	discovery, jwks               []byte
	trips                         atomic.Int64 // Redis round trips, for /metrics
	audit                         io.Writer
	shaReserve, shaCount          string
	fold                          bool // -fold: the step-up in 3 requests and 6 round trips
	rt3                           bool // -rt3: … and 3 round trips
	shaPost3, shaTake3, shaSSO3   string
}

// tripCounter counts commands and pipelines sent: the bench reads the
// total from /metrics, as it does stepupd's.
type tripCounter struct{ n *atomic.Int64 }

func (tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (t tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { t.n.Add(1); return next(ctx, cmd) }
}
func (t tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { t.n.Add(1); return next(ctx, cmds) }
}

// Minimal scripts, for the two places where writes must be one: the TOTP
// post counts the attempt against the user's budget and, only within it
// and with a good code, claims the time step and gives the attempt back
// (stepupd's ReserveTOTP); a budget's count and its first expiry.
const (
	scriptReserve = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) or ARGV[3] ~= '1' then return 0 end
if not redis.call('SET', KEYS[2], '1', 'PX', ARGV[4], 'NX') then return -1 end
redis.call('DECR', KEYS[1])
return 1`
	scriptCount = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`
	// -rt3: the TOTP post in one script. KEYS: flow, session, user's
	// budget, the step, IP budget, code, user's session index. ARGV: sub,
	// sid, good, budget TTL, max, step TTL, factor time, seen, code TTL,
	// grant TTL. The grant's key is built here: one Redis node only.
	scriptPost3 = `local flow = redis.call('GET', KEYS[1])
if not flow then return {0} end
local s = redis.call('HMGET', KEYS[2], 'sub', 'pwd', 'g:bench')
if s[1] ~= ARGV[1] then return {0} end
local n = redis.call('INCR', KEYS[3])
if n == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
local ip = redis.call('INCR', KEYS[5])
if ip == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[4]) end
if n > tonumber(ARGV[5]) or ARGV[3] ~= '1' then return {-1} end
if not redis.call('SET', KEYS[4], '1', 'PX', ARGV[6], 'NX') then return {-1} end
redis.call('DECR', KEYS[3])
redis.call('DECR', KEYS[5])
redis.call('HSET', KEYS[2], 'seen', ARGV[8], 'c:bench', '1', 'totp', ARGV[7])
redis.call('HSET', KEYS[7], ARGV[2], '')
local g = s[3] or ''
if g ~= '' then redis.call('PEXPIRE', 'f:{g:' .. g .. '}', ARGV[10]) end
redis.call('HSET', KEYS[6], 'req', flow, 'sub', ARGV[1], 'pwd', s[2] or '0', 'totp', ARGV[7], 'sid', ARGV[2], 'g', g, 'acr', 'mfa')
redis.call('PEXPIRE', KEYS[6], ARGV[9])
redis.call('DEL', KEYS[1])
return {1, flow, s[2] or '0', g}`
	// -rt3: the code exchange in one script: the code taken, the client,
	// redirect URI and PKCE challenge compared, the grant and its indexes
	// written. KEYS: code. ARGV: client, redirect URI, challenge, a new
	// grant id, the refresh token's digest, the index score, grant TTL.
	scriptTake3 = `if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return {2} end
local c = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
local m = {}
for i = 1, #c, 2 do m[c[i]] = c[i + 1] end
local req = cjson.decode(m.req)
if req.client_id ~= ARGV[1] or req.redirect_uri ~= ARGV[2] or req.code_challenge ~= ARGV[3] then return {-1} end
local g = m.g
if g == '' then g = ARGV[4] end
redis.call('HSET', 'f:{s:' .. m.sid .. '}', 'g:bench', g)
redis.call('ZADD', 'f:{u:' .. m.sub .. '}:grants', ARGV[6], g)
redis.call('SET', 'f:{g:' .. g .. '}', cjson.encode({client_id = ARGV[1], sub = m.sub, sid = m.sid, rt = ARGV[5], acr = m.acr, auth_time = m.totp, scopes = req.scopes}), 'PX', ARGV[7])
return {1, m.req, m.sub, m.pwd, m.totp, m.sid, g, m.acr}`
	// -rt3: an SSO /authorize in one script (the subject comes with a
	// second cookie, MAC-bound to the session, so the account is read
	// first): the session checked and touched, the index, the grant's
	// TTL, the code. KEYS: session, code, user's session index. ARGV: sub,
	// sid, the request, seen, code TTL, grant TTL.
	scriptSSO3 = `local s = redis.call('HMGET', KEYS[1], 'sub', 'pwd', 'totp', 'g:bench')
if s[1] ~= ARGV[1] then return {0} end
redis.call('HSET', KEYS[1], 'seen', ARGV[4], 'c:bench', '1')
redis.call('HSET', KEYS[3], ARGV[2], '')
local g = s[4] or ''
if g ~= '' then redis.call('PEXPIRE', 'f:{g:' .. g .. '}', ARGV[6]) end
local acr = '1fa'
if s[3] then acr = 'mfa' end
redis.call('HSET', KEYS[2], 'req', ARGV[3], 'sub', ARGV[1], 'pwd', s[2] or '0', 'totp', s[3] or '', 'sid', ARGV[2], 'g', g, 'acr', acr)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {1, acr}`
)

func newServer(sec *secrets, redisAddr, dbPath string) (*server, error) {
	s := &server{
		issuer: strings.TrimSuffix(sec.Issuer, "/"), clientID: sec.ClientID, redirectURI: sec.RedirectURI,
		secretSum: sha256.Sum256([]byte(sec.ClientSecret)), passwordSum: sha256.Sum256([]byte(sec.Password)),
		audit: os.Stderr,
	}
	var err error
	if s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	s.kid = randomID(12)
	aesKey := make([]byte, 32)
	s.csrfKey = make([]byte, 32)
	_, _ = rand.Read(aesKey)
	_, _ = rand.Read(s.csrfKey)
	block, _ := aes.NewCipher(aesKey)
	s.aead, _ = cipher.NewGCM(block)
	s.discovery, _ = json.Marshal(map[string]any{
		"issuer": s.issuer, "authorization_endpoint": s.issuer + "/authorize", "token_endpoint": s.issuer + "/oauth/token",
		"jwks_uri": s.issuer + "/keys", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"}, "code_challenge_methods_supported": []string{"S256"},
		"grant_types_supported":                          []string{"authorization_code", "client_credentials"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic"},
		"acr_values_supported":                           []string{"urn:stepup:loa:1fa", mfaACR},
		"authorization_response_iss_parameter_supported": true,
	})
	b64 := base64.RawURLEncoding
	s.jwks, _ = json.Marshal(map[string]any{"keys": []any{map[string]string{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": s.kid,
		"x": b64.EncodeToString(s.key.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": b64.EncodeToString(s.key.PublicKey.Y.FillBytes(make([]byte, 32))),
	}}})

	s.rdb = redis.NewClient(&redis.Options{Addr: redisAddr, Protocol: 3, PoolSize: 64})
	s.rdb.AddHook(tripCounter{&s.trips})
	if err := s.loadScripts(context.Background()); err != nil {
		return nil, fmt.Errorf("redis %s: %w", redisAddr, err)
	}
	s.trips.Store(0)
	// The same driver and pragmas as stepupd's SQLite store.
	s.db, err = sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	s.db.SetMaxIdleConns(16)
	if err := s.fill(sec.Users); err != nil {
		return nil, err
	}
	if s.bySub, err = s.db.Prepare(`SELECT subject, username, totp_secret, locked, active FROM accounts WHERE subject = ?`); err != nil {
		return nil, err
	}
	if s.byName, err = s.db.Prepare(`SELECT subject, username, totp_secret, locked, active FROM accounts WHERE username = ?`); err != nil {
		return nil, err
	}
	return s, nil
}

// fill writes the accounts table: subject, username, the TOTP secret
// sealed with AES-256-GCM (the subject as associated data, as stepupd).
func (s *server) fill(users []struct {
	Username   string `json:"username"`
	TOTPSecret string `json:"totp_secret"`
}) error {
	if _, err := s.db.Exec(`DROP TABLE IF EXISTS accounts;
CREATE TABLE accounts (subject TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, totp_secret TEXT NOT NULL, locked BOOLEAN NOT NULL DEFAULT FALSE, active BOOLEAN NOT NULL DEFAULT TRUE)`); err != nil {
		return err
	}
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	for _, u := range users {
		sum := sha256.Sum256([]byte("sub:" + u.Username))
		sub := fmt.Sprintf("%x", sum[:16])
		if _, err := tx.Exec(`INSERT INTO accounts (subject, username, totp_secret) VALUES (?, ?, ?)`, sub, u.Username, s.seal(sub, u.TOTPSecret)); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// loadScripts puts the two scripts in Redis' script cache (again after
// a NOSCRIPT: a restarted Redis).
func (s *server) loadScripts(ctx context.Context) error {
	var err error
	if s.shaReserve, err = s.rdb.ScriptLoad(ctx, scriptReserve).Result(); err != nil {
		return err
	}
	if s.shaCount, err = s.rdb.ScriptLoad(ctx, scriptCount).Result(); err != nil {
		return err
	}
	if s.shaPost3, err = s.rdb.ScriptLoad(ctx, scriptPost3).Result(); err != nil {
		return err
	}
	if s.shaTake3, err = s.rdb.ScriptLoad(ctx, scriptTake3).Result(); err != nil {
		return err
	}
	s.shaSSO3, err = s.rdb.ScriptLoad(ctx, scriptSSO3).Result()
	return err
}

func (s *server) seal(sub, secret string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(secret), []byte(sub)))
}

// account is one SQL read: the row by primary key (or, at sign-in, by
// username), the TOTP secret opened.
type account struct {
	sub, username, totp string
}

func (s *server) account(ctx context.Context, stmt *sql.Stmt, key string) (*account, error) {
	var a account
	var sealed string
	var locked, active bool
	if err := stmt.QueryRowContext(ctx, key).Scan(&a.sub, &a.username, &sealed, &locked, &active); err != nil {
		return nil, err
	}
	if locked || !active {
		return nil, errors.New("account locked or disabled")
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return nil, errors.New("bad sealed secret")
	}
	secret, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(a.sub))
	if err != nil {
		return nil, err
	}
	a.totp = string(secret)
	return &a, nil
}

// Redis keys. Braces put what one script touches on one Cluster slot.
func sessKey(id string) string   { return "f:{s:" + id + "}" }
func userSess(sub string) string { return "f:{u:" + sub + "}:sess" }
func userFail(sub string) string { return "f:{u:" + sub + "}:fail" }
func flowKey(id string) string   { return "f:flow:" + id }
func codeKey(c string) string    { return "f:code:" + c }
func grantKey(id string) string  { return "f:{g:" + id + "}" }

const (
	sessionTTL = 30 * time.Minute
	codeTTL    = 10 * time.Minute
	maxAge     = 15 * time.Minute // the multi-factor level's max_age
)

// authReq is what an authorization request asks for; it is stored as the
// flow (while a factor is pending) and then as the code.
type authReq struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state"`
	Nonce         string   `json:"nonce"`
	Scopes        []string `json:"scopes"`
	CodeChallenge string   `json:"code_challenge"`
	ACR           string   `json:"acr,omitempty"`
	// filled when a code is issued
	Sub      string   `json:"sub,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	SID      string   `json:"sid,omitempty"`
	Grant    string   `json:"grant_id,omitempty"`
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/.well-known/openid-configuration":
		writeJSON(w, http.StatusOK, s.discovery)
	case p == "/keys":
		writeJSON(w, http.StatusOK, s.jwks)
	case p == "/authorize" && r.Method == http.MethodGet:
		s.authorize(w, r)
	case p == "/oauth/token" && r.Method == http.MethodPost:
		s.token(w, r)
	case p == "/metrics":
		fmt.Fprintf(w, "stepup_store_round_trips_total %d\n", s.trips.Load())
	case strings.HasPrefix(p, "/login/"):
		id, action, _ := strings.Cut(p[len("/login/"):], "/")
		switch {
		case action == "" && r.Method == http.MethodGet:
			s.page(w, r, id)
		case action == "totp" && r.Method == http.MethodPost:
			s.totpPost(w, r, id)
		case action == "password" && r.Method == http.MethodPost:
			s.passwordPost(w, r, id)
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, []byte(`{"error":"`+code+`"}`))
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionID is the browser's session cookie: a 256-bit random id, looked
// up in Redis (what stepupd's securecookie MAC and AES add is not needed
// when the cookie is only an unguessable key).
func sessionID(r *http.Request) string {
	c, err := r.Cookie("floor")
	if err != nil || len(c.Value) != 43 {
		return ""
	}
	return c.Value
}

// session is a session hash as read by HGETALL.
type session struct {
	sub, username   string
	pwdAt, totpAt   int64
	grant           string
	hasPwd, hasTOTP bool
}

func parseSession(m map[string]string) *session {
	if m["sub"] == "" {
		return nil
	}
	ss := &session{sub: m["sub"], username: m["username"], grant: m["g:bench"]}
	if v, ok := m["pwd"]; ok {
		ss.pwdAt, _ = strconv.ParseInt(v, 10, 64)
		ss.hasPwd = true
	}
	if v, ok := m["totp"]; ok {
		ss.totpAt, _ = strconv.ParseInt(v, 10, 64)
		ss.hasTOTP = true
	}
	return ss
}

// authorize: GET /authorize. SSO: the session read (1 round trip), the
// account read (SQL), the code and the session's touch in one pipeline of
// 4 commands (as stepupd: the code, the session's activity, the user's
// session index, the online grant's TTL), a 302 to the client. Step-up:
// the session read, the account read, the flow written (1), a 302 to the
// factor page.
func (s *server) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	a := authReq{ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), Nonce: q.Get("nonce"),
		Scopes: strings.Fields(q.Get("scope")), CodeChallenge: q.Get("code_challenge"), ACR: q.Get("acr_values")}
	if a.ClientID != s.clientID || a.RedirectURI != s.redirectURI {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || len(a.CodeChallenge) != 43 || !hasScope(a.Scopes, "openid") {
		s.redirectError(w, r, &a, "invalid_request")
		return
	}
	if a.ACR != "" && a.ACR != mfaACR && a.ACR != "urn:stepup:loa:1fa" {
		a.ACR = ""
	}
	var ss *session
	sid := sessionID(r)
	if s.rt3 && sid != "" && a.ACR != mfaACR {
		if sub := s.cookieSub(r, sid); sub != "" && s.authorizeSSO3(w, r, &a, sid, sub) {
			return
		}
	}
	if s.fold && sid != "" && a.ACR == mfaACR {
		s.authorizeFolded(w, r, &a, sid)
		return
	}
	if sid != "" {
		m, err := s.rdb.HGetAll(ctx, sessKey(sid)).Result()
		if err != nil {
			http.Error(w, "store", http.StatusServiceUnavailable)
			return
		}
		ss = parseSession(m)
	}
	if ss != nil {
		acct, err := s.account(ctx, s.bySub, ss.sub)
		if err != nil {
			ss = nil // a disabled or deleted account signs in again
		} else if a.ACR != mfaACR || (ss.hasTOTP && time.Since(time.Unix(ss.totpAt, 0)) < maxAge) {
			s.issueCode(w, r, &a, sid, ss, acct, false, nil)
			return
		}
	}
	flow := randomID(24)
	if ss != nil {
		a.SID = sid
	}
	rec, _ := json.Marshal(&a)
	if err := s.rdb.Set(ctx, flowKey(flow), rec, codeTTL).Err(); err != nil {
		http.Error(w, "store", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, s.issuer+"/login/"+flow, http.StatusFound)
}

// cookieSub is the subject of the -rt3 cookie "floor_sub" (subject, a
// dot, an HMAC of session and subject), "" when absent or not valid.
func (s *server) cookieSub(r *http.Request, sid string) string {
	c, err := r.Cookie("floor_sub")
	if err != nil {
		return ""
	}
	sub, mac, ok := strings.Cut(c.Value, ".")
	if !ok || subtle.ConstantTimeCompare([]byte(mac), []byte(s.csrf("sub\x00"+sid, sub))) != 1 {
		return ""
	}
	return sub
}

// authorizeSSO3 is an SSO /authorize in one round trip (-rt3): the
// account read by the cookie's subject, then one script. It reports
// false when the session is not there (the caller takes the plain path).
func (s *server) authorizeSSO3(w http.ResponseWriter, r *http.Request, a *authReq, sid, sub string) bool {
	ctx := r.Context()
	if _, err := s.account(ctx, s.bySub, sub); err != nil {
		return false
	}
	now := time.Now()
	code := randomID(32)
	req, _ := json.Marshal(a)
	res, err := s.rdb.EvalSha(ctx, s.shaSSO3, []string{sessKey(sid), codeKey(code), userSess(sub)},
		sub, sid, req, now.UnixNano(), codeTTL.Milliseconds(), sessionTTL.Milliseconds()).Slice()
	if err != nil || res[0].(int64) != 1 {
		return false
	}
	acr := "urn:stepup:loa:1fa"
	if res[1].(string) == "mfa" {
		acr = mfaACR
	}
	s.auditLine(now, "authorize.code", "client_id", a.ClientID, "sub", sub, "acr", acr)
	http.Redirect(w, r, a.RedirectURI+"?code="+code+"&iss="+url.QueryEscape(s.issuer)+"&state="+url.QueryEscape(a.State), http.StatusFound)
	return true
}

// authorizeFolded is the step-up's /authorize in the -fold structure:
// the session read and the flow's write in one round trip (the flow
// names the cookie's session, which the post reads again), no account
// read (the post reads it), and the TOTP page in this response: one HTTP
// request, one round trip and one SQL read fewer than stepupd's flow.
func (s *server) authorizeFolded(w http.ResponseWriter, r *http.Request, a *authReq, sid string) {
	ctx := r.Context()
	flow := randomID(24)
	a.SID = sid
	rec, _ := json.Marshal(a)
	pipe := s.rdb.Pipeline()
	h := pipe.HGetAll(ctx, sessKey(sid))
	pipe.Set(ctx, flowKey(flow), rec, codeTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		http.Error(w, "store", http.StatusServiceUnavailable)
		return
	}
	ss := parseSession(h.Val())
	if ss == nil {
		http.Redirect(w, r, s.issuer+"/login/"+flow, http.StatusFound)
		return
	}
	if ss.hasTOTP && time.Since(time.Unix(ss.totpAt, 0)) < maxAge {
		acct, err := s.account(ctx, s.bySub, ss.sub)
		if err != nil {
			http.Redirect(w, r, s.issuer+"/login/"+flow, http.StatusFound)
			return
		}
		s.issueCode(w, r, a, sid, ss, acct, false, nil)
		return
	}
	s.writePage(w, a, ss, sid, flow)
}

func hasScope(scopes []string, want string) bool {
	for _, s := range scopes {
		if s == want {
			return true
		}
	}
	return false
}

func (s *server) redirectError(w http.ResponseWriter, r *http.Request, a *authReq, code string) {
	http.Redirect(w, r, a.RedirectURI+"?error="+code+"&state="+url.QueryEscape(a.State)+"&iss="+url.QueryEscape(s.issuer), http.StatusFound)
}

// issueCode writes the code with the session's touch in one pipeline of
// 4 commands (with elevate, the touch records the TOTP factor too), plus
// `extra` commands in the same round trip (the TOTP post's flow end and
// refund), logs authorize.code, and redirects to the client.
func (s *server) issueCode(w http.ResponseWriter, r *http.Request, a *authReq, sid string, ss *session, acct *account, elevate bool, extra func(redis.Pipeliner)) {
	ctx := r.Context()
	now := time.Now()
	a.Sub, a.SID, a.Grant = acct.sub, sid, ss.grant
	a.AuthTime = ss.pwdAt
	a.AMR = []string{"pwd"}
	acr := "urn:stepup:loa:1fa"
	if ss.hasTOTP {
		a.AMR = []string{"pwd", "otp", "mfa"}
		acr = mfaACR
		if ss.totpAt > a.AuthTime {
			a.AuthTime = ss.totpAt
		}
	}
	a.ACR = acr
	code := randomID(32)
	rec, _ := json.Marshal(a)
	pipe := s.rdb.Pipeline()
	if extra != nil {
		extra(pipe)
	}
	pipe.Set(ctx, codeKey(code), rec, codeTTL)
	if elevate {
		pipe.HSet(ctx, sessKey(sid), "seen", now.UnixNano(), "c:bench", "1", "totp", ss.totpAt)
	} else {
		pipe.HSet(ctx, sessKey(sid), "seen", now.UnixNano(), "c:bench", "1")
	}
	pipe.HSet(ctx, userSess(acct.sub), sid, "")
	pipe.PExpire(ctx, grantKey(orDefault(ss.grant, "none")), sessionTTL)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		http.Error(w, "store", http.StatusServiceUnavailable)
		return
	}
	s.auditLine(now, "authorize.code", "client_id", a.ClientID, "sub", acct.sub, "acr", acr)
	http.Redirect(w, r, a.RedirectURI+"?code="+code+"&iss="+url.QueryEscape(s.issuer)+"&state="+url.QueryEscape(a.State), http.StatusFound)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// csrf is the form's token: an HMAC of the session and the flow.
func (s *server) csrf(sid, flow string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(sid))
	m.Write([]byte{0})
	m.Write([]byte(flow))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// flowAndSession is one round trip: the flow and the session, pipelined.
func (s *server) flowAndSession(ctx context.Context, flow, sid string) (*authReq, *session, error) {
	pipe := s.rdb.Pipeline()
	f := pipe.Get(ctx, flowKey(flow))
	var h *redis.MapStringStringCmd
	if sid != "" {
		h = pipe.HGetAll(ctx, sessKey(sid))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	raw, err := f.Bytes()
	if err != nil {
		return nil, nil, err
	}
	var a authReq
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, nil, err
	}
	var ss *session
	if h != nil {
		ss = parseSession(h.Val())
	}
	return &a, ss, nil
}

var htmlHeaders = map[string][]string{
	"Cache-Control":           {"no-store"},
	"Content-Security-Policy": {"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"},
	"Content-Type":            {"text/html; charset=utf-8"},
	"Referrer-Policy":         {"no-referrer"},
	"X-Content-Type-Options":  {"nosniff"},
	"X-Frame-Options":         {"DENY"},
}

// page: GET /login/{flow}, one round trip (flow and session), then the
// TOTP page (a session that asks for multi-factor) or the login page,
// written from constant pieces with the values escaped.
func (s *server) page(w http.ResponseWriter, r *http.Request, flow string) {
	sid := sessionID(r)
	a, ss, err := s.flowAndSession(r.Context(), flow, sid)
	if err != nil {
		http.Error(w, "no such flow", http.StatusNotFound)
		return
	}
	s.writePage(w, a, ss, sid, flow)
}

// writePage writes the TOTP page (a session that asks for multi-factor)
// or the login page.
func (s *server) writePage(w http.ResponseWriter, a *authReq, ss *session, sid, flow string) {
	h := w.Header()
	for k, v := range htmlHeaders {
		h[k] = v
	}
	var b bytes.Buffer
	b.Grow(2048)
	esc := html.EscapeString
	action := "/login/" + esc(flow)
	if ss != nil && a.ACR == mfaACR {
		tok := s.csrf(sid, flow)
		subInput := ""
		if s.rt3 {
			// The post reads the account before any round trip: the
			// subject comes with the form, bound by the CSRF token.
			tok = s.csrf(sid, flow+"\x00"+ss.sub)
			subInput = `<input type="hidden" name="sub" value="` + esc(ss.sub) + `">` + "\n"
		}
		b.WriteString(pageHead("Authenticator app code"))
		b.WriteString(`<p class="client">Signing in to <strong>` + esc(a.ClientID) + `</strong></p>
<div class="whoami">Signed in as <strong data-signed-in-as>` + esc(ss.username) + `</strong> · <form method="post" action="` + action + `/switch"><input type="hidden" name="csrf_token" value="` + tok + `"><button type="submit" class="link" data-action="not-you">Not you?</button></form> · <a href="/account" data-action="account">Account</a></div>
<h1>Authenticator app code</h1>
<p class="step">Additional verification is required to continue to ` + esc(a.ClientID) + `.</p>
<p class="hint" id="code-hint">Enter the 6-digit code shown by your authenticator app.</p>
<form method="post" action="` + action + `/totp" data-factor="totp" class="code-form">
<input type="hidden" name="csrf_token" value="` + tok + `">
` + subInput + `<fieldset>
<div class="field">
<label for="code">Verification code</label>
<input type="text" id="code" name="code" class="code" autocomplete="one-time-code" inputmode="numeric" spellcheck="false" required autofocus aria-describedby="code-hint">
</div>
<button type="submit">Verify</button>
</fieldset>
</form>
<form method="post" action="` + action + `/cancel" class="cancel">
<input type="hidden" name="csrf_token" value="` + tok + `">
<button type="submit" class="secondary" data-action="cancel">Cancel</button>
</form>
`)
	} else {
		tok := s.csrf("", flow)
		b.WriteString(pageHead("Sign in"))
		b.WriteString(`<h1>Sign in</h1>
<form method="post" action="` + action + `/password" class="login">
<input type="hidden" name="csrf_token" value="` + tok + `">
<input type="text" id="username" name="username" value="" autocomplete="username" required autofocus>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Continue</button>
</form>
`)
	}
	b.WriteString("</div>\n</main>\n</body>\n</html>\n")
	h["Content-Length"] = []string{strconv.Itoa(b.Len())}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

func pageHead(title string) string {
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>` + title + ` · stepup</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css?v=afc93af2f843">
</head>
<body>
<a class="skip-link" href="#content">Skip to content</a>
<main id="content">
<div class="card">
`
}

// formPost checks what every form post needs: the browser's Origin, the
// form, the CSRF token.
func (s *server) formPost(w http.ResponseWriter, r *http.Request, sid, flow string) bool {
	if o := r.Header.Get("Origin"); o != "" && o != s.issuer {
		http.Error(w, "cross-origin", http.StatusForbidden)
		return false
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return false
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf_token")), []byte(s.csrf(sid, flow))) != 1 {
		http.Error(w, "bad csrf token", http.StatusForbidden)
		return false
	}
	return true
}

// totpPost: POST /login/{flow}/totp. Round trips: the flow and the
// session (1); the user's budget with the step's claim, and the IP's
// budget (1, two scripts); the elevation, the user's session index, the
// code, the grant's TTL, the flow's end and the IP budget's refund (1, six
// commands). One SQL read (the account, for its TOTP secret); the HMAC.
func (s *server) totpPost(w http.ResponseWriter, r *http.Request, flow string) {
	if s.rt3 {
		s.totpPost3(w, r, flow)
		return
	}
	ctx := r.Context()
	sid := sessionID(r)
	if sid == "" || !s.formPost(w, r, sid, flow) {
		if sid == "" {
			http.Error(w, "no session", http.StatusForbidden)
		}
		return
	}
	a, ss, err := s.flowAndSession(ctx, flow, sid)
	if err != nil || ss == nil || a.SID != sid {
		http.Error(w, "no such flow", http.StatusNotFound)
		return
	}
	acct, err := s.account(ctx, s.bySub, ss.sub)
	if err != nil {
		http.Error(w, "account", http.StatusForbidden)
		return
	}
	now := time.Now()
	step, ok := verifyTOTP(acct.totp, r.PostForm.Get("code"), now)
	good := "0"
	if ok {
		good = "1"
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	pipe := s.rdb.Pipeline()
	res := pipe.EvalSha(ctx, s.shaReserve, []string{userFail(acct.sub), "f:{u:" + acct.sub + "}:totp:" + strconv.FormatInt(step, 10)},
		(15 * time.Minute).Milliseconds(), 5, good, (150 * time.Second).Milliseconds())
	pipe.EvalSha(ctx, s.shaCount, []string{"f:fail:ip:" + ip}, (15 * time.Minute).Milliseconds())
	if _, err := pipe.Exec(ctx); err != nil {
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			_ = s.loadScripts(ctx)
		}
		http.Error(w, "store", http.StatusServiceUnavailable)
		return
	}
	if n, _ := res.Int(); n != 1 {
		http.Error(w, "wrong code", http.StatusUnauthorized)
		return
	}
	s.auditLine(now, "stepup.verified", "factor", "totp", "sub", acct.sub, "client_id", a.ClientID)
	s.auditLine(now, "stepup.completed", "acr", mfaACR, "sub", acct.sub, "client_id", a.ClientID)
	ss.hasTOTP, ss.totpAt = true, now.Unix()
	s.issueCode(w, r, a, sid, ss, acct, true, func(p redis.Pipeliner) {
		p.Del(ctx, flowKey(flow))
		p.Decr(ctx, "f:fail:ip:"+ip)
	})
}

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// totpPost3 is the TOTP post in one round trip (-rt3): the account read
// by the form's subject (bound to session and flow by the CSRF token),
// the code checked, then one script checks flow and session and does the
// budgets, the step's claim, the elevation and the code.
func (s *server) totpPost3(w http.ResponseWriter, r *http.Request, flow string) {
	ctx := r.Context()
	sid := sessionID(r)
	if err := r.ParseForm(); err != nil || sid == "" {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	sub := r.PostForm.Get("sub")
	if !s.formPost(w, r, sid, flow+"\x00"+sub) {
		return
	}
	acct, err := s.account(ctx, s.bySub, sub)
	if err != nil {
		http.Error(w, "account", http.StatusForbidden)
		return
	}
	now := time.Now()
	step, ok := verifyTOTP(acct.totp, r.PostForm.Get("code"), now)
	good := "0"
	if ok {
		good = "1"
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	code := randomID(32)
	res, err := s.rdb.EvalSha(ctx, s.shaPost3, []string{flowKey(flow), sessKey(sid), userFail(sub), "f:{u:" + sub + "}:totp:" + strconv.FormatInt(step, 10),
		"f:fail:ip:" + ip, codeKey(code), userSess(sub)},
		sub, sid, good, (15 * time.Minute).Milliseconds(), 5, (150 * time.Second).Milliseconds(), now.Unix(), now.UnixNano(),
		codeTTL.Milliseconds(), sessionTTL.Milliseconds()).Slice()
	if err != nil {
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			_ = s.loadScripts(ctx)
		}
		http.Error(w, "store", http.StatusServiceUnavailable)
		return
	}
	switch st, _ := res[0].(int64); st {
	case 1:
	case 0:
		http.Error(w, "no such flow", http.StatusNotFound)
		return
	default:
		http.Error(w, "wrong code", http.StatusUnauthorized)
		return
	}
	var a authReq
	if err := json.Unmarshal([]byte(res[1].(string)), &a); err != nil {
		http.Error(w, "flow", http.StatusInternalServerError)
		return
	}
	s.auditLine(now, "stepup.verified", "factor", "totp", "sub", sub, "client_id", a.ClientID)
	s.auditLine(now, "stepup.completed", "acr", mfaACR, "sub", sub, "client_id", a.ClientID)
	s.auditLine(now, "authorize.code", "client_id", a.ClientID, "sub", sub, "acr", mfaACR)
	http.Redirect(w, r, a.RedirectURI+"?code="+code+"&iss="+url.QueryEscape(s.issuer)+"&state="+url.QueryEscape(a.State), http.StatusFound)
}

// verifyTOTP checks a 6-digit RFC 6238 code (SHA-1, 30 s) at the current
// step and one either side; it returns the step that matched.
func verifyTOTP(secret, code string, now time.Time) (int64, bool) {
	key, err := base32NoPad.DecodeString(strings.ToUpper(secret))
	if err != nil || len(code) != 6 {
		return 0, false
	}
	t := now.Unix() / 30
	for _, step := range [3]int64{t, t - 1, t + 1} {
		if subtle.ConstantTimeCompare([]byte(hotp(key, step)), []byte(code)) == 1 {
			return step, true
		}
	}
	return t, false
}

func hotp(key []byte, counter int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	o := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[o:o+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1000000)
}

// passwordPost: the bench's untimed set-up sign-in. A SHA-256 compare,
// not argon2id: no measured operation includes it.
func (s *server) passwordPost(w http.ResponseWriter, r *http.Request, flow string) {
	ctx := r.Context()
	if !s.formPost(w, r, "", flow) {
		return
	}
	a, _, err := s.flowAndSession(ctx, flow, "")
	if err != nil {
		http.Error(w, "no such flow", http.StatusNotFound)
		return
	}
	acct, err := s.account(ctx, s.byName, r.PostForm.Get("username"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("password")))
	if err != nil || subtle.ConstantTimeCompare(sum[:], s.passwordSum[:]) != 1 {
		http.Error(w, "wrong username or password", http.StatusUnauthorized)
		return
	}
	now := time.Now()
	sid := randomID(32)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, sessKey(sid), "sub", acct.sub, "username", acct.username, "pwd", now.Unix())
	pipe.PExpire(ctx, sessKey(sid), sessionTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		http.Error(w, "store", http.StatusServiceUnavailable)
		return
	}
	s.auditLine(now, "login.succeeded", "sub", acct.sub, "client_id", a.ClientID)
	http.SetCookie(w, &http.Cookie{Name: "floor", Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 43200})
	if s.rt3 {
		http.SetCookie(w, &http.Cookie{Name: "floor_sub", Value: acct.sub + "." + s.csrf("sub\x00"+sid, acct.sub), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 43200})
	}
	s.issueCode(w, r, a, sid, &session{sub: acct.sub, username: acct.username, pwdAt: now.Unix(), hasPwd: true}, acct, false, func(p redis.Pipeliner) {
		p.Del(ctx, flowKey(flow))
	})
}

// token: POST /oauth/token with client_secret_basic.
func (s *server) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	sum := sha256.Sum256([]byte(secret))
	if !ok || id != s.clientID || subtle.ConstantTimeCompare(sum[:], s.secretSum[:]) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		s.clientCredentials(w)
	case "authorization_code":
		s.exchange(w, r)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

type atClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	JTI      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
}

type idClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AZP      string   `json:"azp"`
	AtHash   string   `json:"at_hash,omitempty"`
	SID      string   `json:"sid,omitempty"`
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (s *server) clientCredentials(w http.ResponseWriter) {
	now := time.Now()
	at, err := s.sign("at+jwt", &atClaims{Issuer: s.issuer, Subject: s.clientID, Audience: s.clientID, Expiry: now.Add(10 * time.Minute).Unix(),
		IssuedAt: now.Unix(), JTI: "cc." + randomID(16), ClientID: s.clientID})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error")
		return
	}
	body, _ := json.Marshal(&tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: 600})
	s.auditLine(now, "token.issued", "grant_type", "client_credentials", "client_id", s.clientID)
	writeJSON(w, http.StatusOK, body)
}

// exchange: the code taken (1 round trip, GETDEL), PKCE and the binding
// checked, the grant stored with the session's and the user's index (1,
// three commands), two ES256 signatures.
func (s *server) exchange(w http.ResponseWriter, r *http.Request) {
	if s.rt3 && s.exchange3(w, r) {
		return
	}
	ctx := r.Context()
	raw, err := s.rdb.GetDel(ctx, codeKey(r.PostForm.Get("code"))).Bytes()
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	var a authReq
	if err := json.Unmarshal(raw, &a); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	v := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if a.ClientID != s.clientID || a.RedirectURI != r.PostForm.Get("redirect_uri") ||
		subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(v[:])), []byte(a.CodeChallenge)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	now := time.Now()
	grant := a.Grant
	if grant == "" {
		grant = randomID(18)
	}
	rt := randomID(32)
	rtSum := sha256.Sum256([]byte(rt))
	rec, _ := json.Marshal(map[string]any{"client_id": a.ClientID, "sub": a.Sub, "sid": a.SID, "rt": base64.RawURLEncoding.EncodeToString(rtSum[:]),
		"acr": a.ACR, "amr": a.AMR, "auth_time": a.AuthTime, "scopes": a.Scopes})
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, sessKey(a.SID), "g:bench", grant)
	pipe.ZAdd(ctx, "f:{u:"+a.Sub+"}:grants", redis.Z{Score: float64(now.Add(sessionTTL).UnixMilli()), Member: grant})
	pipe.Set(ctx, grantKey(grant), rec, sessionTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	a.Grant = grant
	s.issueTokens(w, &a, rt, now)
}

// issueTokens signs the access and ID tokens of a redeemed code and
// writes the token response.
func (s *server) issueTokens(w http.ResponseWriter, a *authReq, rt string, now time.Time) {
	scope := strings.Join(a.Scopes, " ")
	exp := now.Add(10 * time.Minute).Unix()
	at, err := s.sign("at+jwt", &atClaims{Issuer: s.issuer, Subject: a.Sub, Audience: a.ClientID, Expiry: exp, IssuedAt: now.Unix(),
		JTI: a.Grant + "." + randomID(12), ClientID: a.ClientID, Scope: scope, AuthTime: a.AuthTime, ACR: a.ACR, AMR: a.AMR})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error")
		return
	}
	h := sha256.Sum256([]byte(at))
	sidSum := sha256.Sum256([]byte(a.SID)) // the cookie's id is a credential: the RP gets a digest
	idt, err := s.sign("JWT", &idClaims{Issuer: s.issuer, Subject: a.Sub, Audience: a.ClientID, Expiry: exp, IssuedAt: now.Unix(),
		AuthTime: a.AuthTime, Nonce: a.Nonce, ACR: a.ACR, AMR: a.AMR, AZP: a.ClientID, AtHash: base64.RawURLEncoding.EncodeToString(h[:16]), SID: base64.RawURLEncoding.EncodeToString(sidSum[:16])})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error")
		return
	}
	body, _ := json.Marshal(&tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: 600, RefreshToken: rt, IDToken: idt, Scope: scope})
	s.auditLine(now, "token.issued", "grant_type", "authorization_code", "client_id", a.ClientID, "sub", a.Sub, "acr", a.ACR)
	writeJSON(w, http.StatusOK, body)
}

// exchange3 is the code exchange in one round trip (-rt3), for the codes
// totpPost3 stores; it reports false for another code (an SSO code,
// which the plain exchange takes).
func (s *server) exchange3(w http.ResponseWriter, r *http.Request) bool {
	ctx := r.Context()
	v := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	rt := randomID(32)
	rtSum := sha256.Sum256([]byte(rt))
	now := time.Now()
	res, err := s.rdb.EvalSha(ctx, s.shaTake3, []string{codeKey(r.PostForm.Get("code"))}, s.clientID, r.PostForm.Get("redirect_uri"),
		base64.RawURLEncoding.EncodeToString(v[:]), randomID(18), base64.RawURLEncoding.EncodeToString(rtSum[:]),
		now.Add(sessionTTL).UnixMilli(), sessionTTL.Milliseconds()).Slice()
	if err != nil {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return true
	}
	switch st, _ := res[0].(int64); st {
	case 1:
	case 2:
		return false
	default:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return true
	}
	var a authReq
	if err := json.Unmarshal([]byte(res[1].(string)), &a); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return true
	}
	a.Sub, a.SID, a.Grant = res[2].(string), res[5].(string), res[6].(string)
	pwd, _ := strconv.ParseInt(res[3].(string), 10, 64)
	a.AuthTime, _ = strconv.ParseInt(res[4].(string), 10, 64)
	a.AuthTime = max(a.AuthTime, pwd)
	a.ACR, a.AMR = "urn:stepup:loa:1fa", []string{"pwd"}
	if res[7].(string) == "mfa" {
		a.ACR, a.AMR = mfaACR, []string{"pwd", "otp", "mfa"}
	}
	s.issueTokens(w, &a, rt, now)
	return true
}

// sign is a compact JWS with ES256 (RFC 7515, 7518 §3.4: r || s).
func (s *server) sign(typ string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	head := `{"alg":"ES256","kid":"` + s.kid + `","typ":"` + typ + `"}`
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, enc.EncodedLen(len(head))+enc.EncodedLen(len(payload))+2+86)
	buf = enc.AppendEncode(buf, []byte(head))
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	h := sha256.Sum256(buf)
	r, sg, err := ecdsa.Sign(rand.Reader, s.key, h[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	sg.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// auditLine writes one JSON line to stderr per event, one write(2) each,
// as stepupd's audit log does.
func (s *server) auditLine(at time.Time, event string, kv ...string) {
	b := make([]byte, 0, 256)
	b = append(b, `{"time":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"audit","event":`...)
	b = strconv.AppendQuote(b, event)
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, ',')
		b = strconv.AppendQuote(b, kv[i])
		b = append(b, ':')
		b = strconv.AppendQuote(b, kv[i+1])
	}
	b = append(b, "}\n"...)
	_, _ = s.audit.Write(b)
}
