// Package obs is what operators see of stepup: Prometheus metrics and the
// audit log. Every security event goes through Audit, which writes one
// structured log record and counts it, so the log and the metrics never
// disagree. Callers pass identifiers only (subject, client id, factor,
// reason), never a secret, code or token.
package obs

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are stepup's Prometheus collectors, on a registry of their own
// (so tests and several servers in one process do not collide).
type Metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	events      *prometheus.CounterVec
	logins      prometheus.Counter
	stepUps     *prometheus.CounterVec
	failures    *prometheus.CounterVec
	lockouts    *prometheus.CounterVec
	refused     *prometheus.CounterVec
	enrollments *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	storeErrors prometheus.Counter
	storeTrips  prometheus.Counter
	codesSent   *prometheus.CounterVec

	// Children of the vectors above resolved once per label value and
	// kept (WithLabelValues hashes the labels, takes a lock and, for a
	// status code, formats it, on every request). The label sets are
	// the vectors' own (route patterns, event and grant type names), so
	// these hold no more than the vectors do; nothing deletes a child.
	routes      sync.Map // route → *routeStats
	eventCounts sync.Map // event name → prometheus.Counter
	tokenCounts sync.Map // grant type → prometheus.Counter
}

// hotCodes are the status codes whose request counters a routeStats
// keeps resolved; others go through the vector.
var hotCodes = [...]int{http.StatusOK, http.StatusFound, http.StatusSeeOther, http.StatusBadRequest, http.StatusUnauthorized}

// routeStats is one route's latency histogram and its counters for
// hotCodes, each resolved the first time a request ends with it (a
// child that was never used is not created, so the exposition lists
// what it listed before).
type routeStats struct {
	latency prometheus.Observer
	codes   [len(hotCodes)]atomic.Pointer[prometheus.Counter]
}

func (m *Metrics) route(route string) *routeStats {
	if rs, ok := m.routes.Load(route); ok {
		return rs.(*routeStats)
	}
	rs, _ := m.routes.LoadOrStore(route, &routeStats{latency: m.latency.WithLabelValues(route)})
	return rs.(*routeStats)
}

// counter is vec's child for label, resolved once into cache.
func counter(cache *sync.Map, vec *prometheus.CounterVec, label string) prometheus.Counter {
	if c, ok := cache.Load(label); ok {
		return c.(prometheus.Counter)
	}
	c, _ := cache.LoadOrStore(label, vec.WithLabelValues(label))
	return c.(prometheus.Counter)
}

// NewMetrics registers stepup's collectors, with the Go runtime and
// process collectors, on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_http_requests_total", Help: "HTTP requests by route pattern and status code.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stepup_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_audit_events_total", Help: "Audit events by name.",
	}, []string{"event"})
	m.logins = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "stepup_logins_total", Help: "Successful sign-ins with a password (new sessions and re-authentications).",
	})
	m.stepUps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_step_ups_total", Help: "Authorizations completed at a level after a factor was verified in the flow, by acr.",
	}, []string{"acr"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_failures_total", Help: "Failed authentications and refused requests by reason.",
	}, []string{"reason"})
	m.lockouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_lockouts_total", Help: "Abuse budgets exhausted (the failure that reached the limit), by budget: user or ip.",
	}, []string{"budget"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_locked_attempts_total", Help: "Attempts answered 429 because a budget was exhausted, by budget.",
	}, []string{"budget"})
	m.enrollments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_enrollments_total", Help: "Factors enrolled, by factor.",
	}, []string{"factor"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_tokens_issued_total", Help: "Token responses, by grant type.",
	}, []string{"grant_type"})
	m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "stepup_store_errors_total", Help: "Redis commands and pipelines that failed (not counting missing keys).",
	})
	m.storeTrips = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "stepup_store_round_trips_total", Help: "Redis commands and pipelines sent (one network round trip each).",
	})
	m.codesSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_codes_sent_total", Help: "One-time codes handed to the SMS or email provider, by factor and result (sent, failed).",
	}, []string{"factor", "result"})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.events, m.logins, m.stepUps, m.failures, m.lockouts, m.refused, m.enrollments, m.tokens, m.storeErrors, m.storeTrips, m.codesSent} {
		f(c)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// StoreRoundTrip counts a Redis round trip and its failure;
// session/redisstore calls it (Options.OnRoundTrip).
func (m *Metrics) StoreRoundTrip(err error) {
	m.storeTrips.Inc()
	if err != nil {
		m.storeErrors.Inc()
	}
}

// Request records one HTTP request. route is the ServeMux pattern that
// served it ("" when none matched), so the label set stays bounded.
func (m *Metrics) Request(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	rs := m.route(route)
	rs.latency.Observe(d.Seconds())
	for i, code := range hotCodes {
		if code == status {
			c := rs.codes[i].Load()
			if c == nil {
				cc := m.requests.WithLabelValues(route, strconv.Itoa(status))
				c = &cc
				rs.codes[i].Store(c)
			}
			(*c).Inc()
			return
		}
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

// Event names. They are stable: operators alert on them.
const (
	EventLogin          = "login.succeeded"    // password verified
	EventLoginFailed    = "login.failed"       // wrong username or password
	EventStepUp         = "stepup.verified"    // a second factor verified
	EventStepUpFailed   = "stepup.failed"      // a wrong or replayed code
	EventStepUpDone     = "stepup.completed"   // an authorization completed at a level reached by a step-up
	EventCancelled      = "stepup.cancelled"   // the user cancelled
	EventLockout        = "lockout"            // a failure exhausted a budget
	EventLocked         = "attempt.locked"     // an attempt refused with 429
	EventEnrolled       = "enroll.succeeded"   // a factor enrolled
	EventEnrollFailed   = "enroll.failed"      // a wrong confirming code
	EventLogout         = "logout"             // a session ended
	EventAuthorized     = "authorize.code"     // a code issued
	EventAuthorizeError = "authorize.error"    // an error sent to the client
	EventToken          = "token.issued"       // tokens issued
	EventClientAuth     = "client.auth_failed" // a client's credentials refused
	EventCodeReplay     = "code.replayed"      // a code used twice: its tokens revoked
	EventCodeMismatch   = "code.mismatch"      // a code presented by another client, redirect URI or PKCE verifier: refused, not spent
	EventRefreshReuse   = "refresh.reused"     // a rotated refresh token reused: the family revoked
	EventRevoked        = "token.revoked"      // a token revoked by its client
	EventThrottled      = "busy"               // refused because the password hashers were busy
	EventStoreDown      = "store.unavailable"  // a request failed because Redis did not answer
	EventRecoveryUsed   = "recovery.used"      // a recovery code spent (with how many are left)

	EventPasskeyClone    = "webauthn.clone_suspected" // a passkey's signature counter did not increase
	EventFactorRemoved   = "factor.removed"           // a user removed a factor on /account
	EventFactorRenamed   = "factor.renamed"           // a user renamed a passkey on /account
	EventSessionRevoked  = "session.revoked"          // a user ended one of their sessions on /account
	EventAccountVerified = "account.verified"         // a verification for /account completed

	// The JSON APIs under /api/v1/ (server/api).
	EventAPIAuthFailed       = "api.auth_failed"         // a bearer token refused (invalid, or lacking the scope)
	EventGrantIssued         = "grant.issued"            // a step-up grant created after a verified factor
	EventGrantUsed           = "grant.used"              // a step-up grant verified (a one-time grant consumed)
	EventGrantRefused        = "grant.refused"           // a step-up grant not found for that user and action
	EventAPISessionStarted   = "api.session_started"     // an API authentication session started
	EventAdminSessionRevoked = "admin.session_revoked"   // an operator ended a session
	EventElevationDropped    = "admin.elevation_dropped" // an operator dropped a session to 1fa
	EventAccountLocked       = "admin.account_locked"    // an operator locked an account
	EventAccountUnlocked     = "admin.account_unlocked"  // an operator unlocked an account
	EventAdminFactorReset    = "admin.factor_reset"      // an operator removed a kind of factor from an account
	EventAccountDisabled     = "admin.account_disabled"  // an operator disabled an account
	EventAccountEnabled      = "admin.account_enabled"   // an operator enabled an account again
	EventAccountDeleted      = "admin.account_deleted"   // an operator deleted an account and its factors

	// SMS and email codes.
	EventCodeSent       = "code.sent"        // a one-time code sent by SMS or email (factor, purpose)
	EventCodeSendFailed = "code.send_failed" // the SMS or email provider refused or did not answer

	// OpenID CIBA (transactional approval).
	EventCIBARequested = "ciba.requested" // a backchannel authentication request accepted, its link sent
	EventCIBARefused   = "ciba.refused"   // a backchannel request refused (reason), or its link opened in another browser
	EventCIBAOpened    = "ciba.opened"    // an approval link opened: the approval is bound to that browser
	EventCIBAApproved  = "ciba.approved"  // the user approved, at acr with amr
	EventCIBADenied    = "ciba.denied"    // the user denied (or cancelled)
	EventCIBAPinged    = "ciba.pinged"    // a ping-mode client notified (or the attempt failed: err)

	// Self-service account lifecycle (PRODUCT.md §11).
	EventResetStarted      = "reset.started"            // a forgot-password flow started (known: whether the address has an account)
	EventResetVerified     = "reset.verified"           // a reset's emailed code verified
	EventPasswordReset     = "reset.completed"          // a password reset: every session and grant ended (admin: by a recovery link)
	EventRecoveryLink      = "admin.recovery_link"      // an operator issued a one-time recovery link
	EventRecoveryLinkUsed  = "reset.link_used"          // a recovery link opened (used up)
	EventPasswordChanged   = "account.password_changed" // a user changed their password on /account
	EventEmailChanged      = "account.email_changed"    // a user changed their email address on /account
	EventRegistered        = "account.registered"       // an account created by registration
	EventRegisterDuplicate = "register.duplicate"       // a registration for an address that has an account (its owner told)
)

// Auditor writes audit events and counts them.
type Auditor struct {
	log *slog.Logger
	m   *Metrics
}

// NewAuditor returns an Auditor logging to log and counting in m.
func NewAuditor(log *slog.Logger, m *Metrics) *Auditor { return &Auditor{log: log, m: m} }

// Event records an audit event: one log record with msg "audit" and
// "event" = name, then attrs (key, value pairs of identifiers), and the
// metrics that follow from it. Events that mean an attack or an outage
// log at Warn.
func (a *Auditor) Event(ctx context.Context, name string, attrs ...any) {
	level := slog.LevelInfo
	switch name {
	case EventLockout, EventLocked, EventCodeReplay, EventCodeMismatch, EventRefreshReuse, EventStoreDown, EventPasskeyClone, EventCodeSendFailed:
		level = slog.LevelWarn
	}
	// The record slog.Logger.Log would make, handed to the handler here
	// and now (the record is written before the caller goes on): without
	// Logger's caller lookup (runtime.Callers, for a source no handler of
	// stepupd prints) and without copying attrs behind an "event" pair.
	// Strings, the attrs' values, become slog values without reflection.
	if h := a.log.Handler(); h.Enabled(ctx, level) {
		r := slog.NewRecord(time.Now(), level, "audit", 0)
		r.AddAttrs(slog.String("event", name))
		r.Add(attrs...)
		_ = h.Handle(ctx, r) // as slog.Logger.Log: a failed write is the handler's to report
	}
	m := a.m
	counter(&m.eventCounts, m.events, name).Inc()
	switch name {
	case EventLogin:
		m.logins.Inc()
	case EventStepUpDone:
		m.stepUps.WithLabelValues(attr(attrs, "acr")).Inc()
	case EventLoginFailed, EventStepUpFailed, EventEnrollFailed, EventAuthorizeError, EventClientAuth, EventCodeReplay, EventCodeMismatch, EventRefreshReuse, EventThrottled, EventStoreDown:
		reason := attr(attrs, "reason")
		if reason == "" {
			reason = name
		}
		m.failures.WithLabelValues(reason).Inc()
	case EventLockout:
		m.lockouts.WithLabelValues(attr(attrs, "budget")).Inc()
	case EventLocked:
		m.refused.WithLabelValues(attr(attrs, "budget")).Inc()
		m.failures.WithLabelValues("locked_" + attr(attrs, "budget")).Inc()
	case EventEnrolled:
		m.enrollments.WithLabelValues(attr(attrs, "factor")).Inc()
	case EventToken:
		counter(&m.tokenCounts, m.tokens, attr(attrs, "grant_type")).Inc()
	case EventCodeSent:
		m.codesSent.WithLabelValues(attr(attrs, "factor"), "sent").Inc()
	case EventCodeSendFailed:
		m.codesSent.WithLabelValues(attr(attrs, "factor"), "failed").Inc()
	}
}

// attr finds the string value of key in slog-style key, value pairs.
func attr(attrs []any, key string) string {
	for i := 0; i+1 < len(attrs); i += 2 {
		if k, ok := attrs[i].(string); ok && k == key {
			if s, ok := attrs[i+1].(string); ok {
				return s
			}
		}
	}
	return ""
}
