// Package server wires stepup together: the protocol endpoints
// (server/op), the hosted pages (server/login), health and readiness,
// static files and the middleware every request passes through.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/notify/senders"
	"github.com/stepup-dev/stepup/server/api"
	"github.com/stepup-dev/stepup/server/login"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/server/scim"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/templates"
)

// Server is a configured stepup instance.
type Server struct {
	Provider *op.Provider
	handler  http.Handler
	store    session.Store
	log      *slog.Logger
	metrics  *obs.Metrics
}

// Options tune New; the zero value is production behaviour.
type Options struct {
	Log *slog.Logger
	// Now replaces the clock (tests).
	Now func() time.Time
	// Mount adds extra routes (the demo relying party).
	Mount func(mux *http.ServeMux)
	// Metrics are the collectors /metrics serves; nil creates them. Pass
	// the ones the store reports its errors to.
	Metrics *obs.Metrics
}

// New builds the server: it loads or creates the shared secrets (signing
// key, cookie and CSRF keys) in the store, so every instance on the same
// store behaves as one.
func New(ctx context.Context, cfg *config.Config, store session.Store, o Options) (*Server, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	keys, err := op.LoadKeys(ctx, KeyOptions(cfg), store, o.Now)
	if err != nil {
		return nil, err
	}
	hashKey, err := sharedSecret(ctx, store, "cookie-hash", 64)
	if err != nil {
		return nil, err
	}
	blockKey, err := sharedSecret(ctx, store, "cookie-block", 32)
	if err != nil {
		return nil, err
	}
	csrfKey, err := sharedSecret(ctx, store, "csrf", 32)
	if err != nil {
		return nil, err
	}
	otpKey, err := sharedSecret(ctx, store, "otp", 32)
	if err != nil {
		return nil, err
	}
	sidKey, err := sharedSecret(ctx, store, "sid", 32)
	if err != nil {
		return nil, err
	}
	smsSender, err := senders.SMS(cfg.SMS, log)
	if err != nil {
		return nil, err
	}
	emailSender, err := senders.Email(cfg.Email, log)
	if err != nil {
		return nil, err
	}
	for _, c := range []struct{ factor, provider string }{{"sms", cfg.SMS.Provider}, {"email", cfg.Email.Provider}} {
		if c.provider == "log" && slices.Contains(cfg.MFA.Factors, c.factor) {
			log.Warn("the "+c.factor+" provider is log: one-time codes are written to the log instead of being sent (development only)", "factor", c.factor)
		}
	}
	metrics := o.Metrics
	if metrics == nil {
		metrics = obs.NewMetrics()
	}
	pages, err := templates.NewWith(brandOptions(cfg.Branding))
	if err != nil {
		return nil, err
	}
	p, err := op.New(op.Options{
		Config:   cfg,
		Store:    store,
		Keys:     keys,
		Sessions: session.NewManager(iss.Scheme == "https", hashKey, blockKey, cfg.Session.AbsoluteTimeout.D()),
		// One argon2id hash per `threads` cores at a time, each in a
		// reused work area of the configured memory (64 MiB).
		Hashes: password.NewLimiterFor(cfg.Passwords.ConcurrentHashes, 0, op.PasswordParams(cfg.Passwords.Argon2id)),
		Log:    log,
		Audit:  obs.NewAuditor(log, metrics),
		Now:    o.Now,
		OTPKey: otpKey,
		SIDKey: sidKey,
		SMS:    smsSender,
		Email:  emailSender,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	lh := login.New(p, pages, csrfKey)
	lh.Register(mux)
	api.New(p).Register(mux)
	scim.New(p).Register(mux)
	ph := p.Handler()
	for _, path := range []string{op.PathDiscovery, op.PathJWKS, op.PathAuthorize, op.PathEndSession, op.PathToken, op.PathIntrospect, op.PathUserinfo, op.PathRevoke, op.PathBCAuthorize, "GET " + op.PathCIBALink + "{link}", "POST " + op.PathCIBALink + "{link}"} {
		mux.Handle(path, ph)
	}
	s := &Server{Provider: p, store: store, log: log, metrics: metrics}
	mux.Handle("GET /metrics", metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, op.PathDiscovery, http.StatusFound)
	})
	if o.Mount != nil {
		o.Mount(mux)
	}
	s.handler = s.middleware(htmlMuxErrors(mux, lh))
	return s, nil
}

// brandOptions are the hosted pages' branding: config.Branding in the
// templates package's terms.
func brandOptions(b config.Branding) templates.Options {
	brand := func(name, logo string, c config.BrandColors) templates.Brand {
		return templates.Brand{Name: name, LogoURL: logo, Accent: c.Accent, AccentText: c.AccentText, Background: c.Background}
	}
	o := templates.Options{Dir: b.Dir, Issuer: brand(b.Name, b.LogoURL, b.Colors), Clients: map[string]templates.Brand{}}
	for _, c := range b.Clients {
		o.Clients[c.ID] = brand(c.Name, c.LogoURL, c.Colors)
	}
	return o
}

// htmlMuxErrors answers a browser's request for an unknown path (404) or
// a method a path does not take (405) with the styled error page instead
// of the mux's plain text. Other clients (APIs, which do not ask for
// text/html) keep the plain answer.
func htmlMuxErrors(mux *http.ServeMux, pages op.Pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" || !strings.Contains(r.Header.Get("Accept"), "text/html") {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusNotFound:
			pages.Error(w, r, http.StatusNotFound, "error.not_found")
		case http.StatusMethodNotAllowed:
			if allow := probe.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			pages.Error(w, r, http.StatusMethodNotAllowed, "error.method")
		default: // a redirect (a missing trailing slash): as the mux answers
			mux.ServeHTTP(w, r)
		}
	})
}

// probeWriter learns the status and headers an answer would have.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *probeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

// sharedSecret returns the random secret every instance on the store uses.
func sharedSecret(ctx context.Context, store session.SecretStore, name string, n int) ([]byte, error) {
	fresh := make([]byte, n)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	v, err := store.InitSecret(ctx, name, fresh)
	if err != nil {
		return nil, fmt.Errorf("sharing the %s key through the store: %w", name, err)
	}
	if len(v) != n {
		return nil, fmt.Errorf("the %s key in the store has %d bytes, want %d", name, len(v), n)
	}
	return v, nil
}

// Handler is the HTTP handler of the instance.
func (s *Server) Handler() http.Handler { return s.handler }

// ready reports whether the store answers.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","store":false}`))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok","store":true}`))
}

// statusWriter records the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware adds security headers, panics → 500, and an access log line.
// The security headers middleware sets on every response, one value each
// (len and cap 1, so that an Add copies rather than writes into them).
var (
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
)

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h := w.Header()
		// Shared values (net/http only reads them; Header.Add copies a
		// full slice): Header.Set would allocate two per request.
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		// Every body is capped here, once: nothing stepup serves takes more
		// (PRODUCT.md §13), and a handler parsing a form never reads 10 MB.
		op.LimitBody(sw, r)
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", "path", op.LogPath(r), "panic", fmt.Sprint(v))
				if sw.status == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
			}
			d := time.Since(start)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			// r.Pattern is the route the mux matched (it sets it on r).
			s.metrics.Request(r.Pattern, status, d)
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				// Behind Enabled: the boxed status and duration and the
				// argument slice are allocated before Logger.Log can
				// find the level disabled, at every request.
				s.log.DebugContext(r.Context(), "request", "method", r.Method, "route", r.Pattern, "status", status, "dur", d)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// KeyOptions are the signing keys cfg asks for.
func KeyOptions(cfg *config.Config) op.KeyOptions {
	o := op.KeyOptions{Algorithm: cfg.Keys.Algorithm, File: cfg.Keys.File}
	for _, c := range cfg.Clients {
		if c.IDTokenSignedResponseAlg != "" {
			o.ClientAlgorithms = append(o.ClientAlgorithms, c.IDTokenSignedResponseAlg)
		}
	}
	return o
}

// RotateSigningKeys is `stepupd keys rotate`: a new signing key in each
// of the store's key sets (only alg's when alg is not ""), published at
// once, signing once every client can have seen it (op.RotateKeys).
// Instances pick it up within a minute, without a restart. A key from
// keys.file is the operator's to rotate.
func RotateSigningKeys(ctx context.Context, cfg *config.Config, store session.SecretStore, alg string, now time.Time) ([]op.KeySet, error) {
	if cfg.Keys.File != "" {
		return nil, errors.New("keys.file is set: the signing keys are that file's; remove keys.file to keep the keys in the database and rotate them")
	}
	algs, err := signingAlgorithms(cfg, alg)
	if err != nil {
		return nil, err
	}
	var out []op.KeySet
	for _, a := range algs {
		res, err := op.RotateKeys(ctx, a, store, now)
		if err != nil {
			return out, fmt.Errorf("%s: %w", a, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// signingAlgorithms are the key sets of cfg in the store, or alg alone
// when it is one of them.
func signingAlgorithms(cfg *config.Config, alg string) ([]string, error) {
	o := KeyOptions(cfg)
	algs := op.KeyAlgorithms(o.Algorithm, o.ClientAlgorithms)
	if alg == "" {
		return algs, nil
	}
	if !slices.Contains(algs, alg) {
		return nil, fmt.Errorf("no %s key set: the key sets are %s", alg, strings.Join(algs, ", "))
	}
	return []string{alg}, nil
}

// RevokeSigningKey is `stepupd keys revoke KID`: the key leaves its key
// set in the store at once, published and signing no more, and another
// key of its algorithm signs from now (op.RevokeKey). Instances pick it
// up within 30 seconds, without a restart. A key from keys.file is
// replaced by replacing the file (docs/operators.md).
func RevokeSigningKey(ctx context.Context, cfg *config.Config, store session.SecretStore, kid string, now time.Time) (op.Revocation, error) {
	if cfg.Keys.File != "" {
		return op.Revocation{}, errors.New("keys.file is set: the signing key is that file's; to revoke it, put a new key in the file and restart every instance (docs/operators.md)")
	}
	algs, _ := signingAlgorithms(cfg, "")
	for _, a := range algs {
		res, err := op.RevokeKey(ctx, a, kid, store, now)
		if errors.Is(err, op.ErrNoSuchKey) {
			continue
		}
		return res, err
	}
	return op.Revocation{}, fmt.Errorf("%w %q in the key sets (%s)", op.ErrNoSuchKey, kid, strings.Join(algs, ", "))
}
