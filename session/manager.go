package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/sessions"
)

// Manager maps the browser's cookie to an opaque session id and key (see
// Session). The cookie holds only those (signed and encrypted by
// gorilla/securecookie); what the session proves lives in the Store.
type Manager struct {
	cookies *sessions.CookieStore
	name    string
	// bindName is the flow-binding cookie (see Binding).
	bindName string
	// decoded remembers cookies this Manager verified or wrote (see Read).
	decoded cookieCache
}

// cookieCache maps session cookie values that verified (or that Set
// wrote) to what they carry, for cookieCacheTTL. Decoding one costs
// securecookie's MAC, AES and, most of all, a gob decoder built per call
// (≈ 0.04 ms, ≈ 5 times per step-up: /authorize, the page's CSRF token
// and flow, the post's CSRF check and flow; issue 18: CPU per step-up).
// Only values that verified are kept, so an attacker's values never fill
// it; a hit is the same answer Decode would give, except that a cookie
// older than the Manager's maxAge stays readable for at most
// cookieCacheTTL more (the session it names has its own timeouts in the
// Store, checked at every use). Bounded: when full it starts empty.
type cookieCache struct {
	mu sync.Mutex
	m  map[string]cookieEntry
}

type cookieEntry struct {
	id, key string
	until   time.Time
}

const (
	cookieCacheTTL = 30 * time.Second
	cookieCacheMax = 4096
)

func (c *cookieCache) get(value string, now time.Time) (cookieEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[value]
	if ok && !now.Before(e.until) {
		delete(c.m, value)
		return cookieEntry{}, false
	}
	return e, ok
}

func (c *cookieCache) put(value, id, key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cookieCacheMax {
		c.m = make(map[string]cookieEntry)
	}
	c.m[value] = cookieEntry{id: id, key: key, until: now.Add(cookieCacheTTL)}
}

// NewManager returns a Manager. secure selects the __Host- prefix and the
// Secure flag (an https issuer). hashKey (32 or 64 bytes) signs and
// blockKey (32 bytes) encrypts the cookie; instances sharing a store must
// share both.
func NewManager(secure bool, hashKey, blockKey []byte, maxAge time.Duration) *Manager {
	cs := sessions.NewCookieStore(hashKey, blockKey)
	cs.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	cs.MaxAge(cs.Options.MaxAge)
	name := "stepup"
	if secure {
		name = "__Host-stepup"
	}
	return &Manager{cookies: cs, name: name, bindName: name + "-flow"}
}

// CookieName is the name of the session cookie.
func (m *Manager) CookieName() string { return m.name }

// ID returns the session id the request's cookie carries, "" for none or
// a cookie that does not verify.
func (m *Manager) ID(r *http.Request) string {
	id, _ := m.Read(r)
	return id
}

// Read returns the session id and key the request's cookie carries, ""
// for none or a cookie that does not verify.
func (m *Manager) Read(r *http.Request) (id, key string) {
	c, err := r.Cookie(m.name)
	if err != nil {
		return "", ""
	}
	now := time.Now()
	if e, ok := m.decoded.get(c.Value, now); ok {
		return e.id, e.key
	}
	var values map[any]any
	if err := m.cookies.Codecs[0].Decode(m.name, c.Value, &values); err != nil {
		return "", ""
	}
	id, _ = values["id"].(string)
	key, _ = values["key"].(string)
	m.decoded.put(c.Value, id, key, now)
	return id, key
}

// Set makes the browser carry id and key ("" before anyone signs in: the
// id then only anchors the forms' CSRF tokens).
func (m *Manager) Set(w http.ResponseWriter, id, key string) error {
	encoded, err := m.cookies.Codecs[0].Encode(m.name, map[any]any{"id": id, "key": key})
	if err != nil {
		return err
	}
	m.decoded.put(encoded, id, key, time.Now())
	http.SetCookie(w, sessions.NewCookie(m.name, encoded, m.cookies.Options))
	return nil
}

// Clear removes the cookie.
func (m *Manager) Clear(w http.ResponseWriter) {
	opts := *m.cookies.Options
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(m.name, "", &opts))
}

// Binding returns the browser's flow-binding value, "" for none.
//
// A pending sign-in belongs to the browser that started it. The session
// cookie cannot say which browser that was: a flow usually starts before
// anyone signs in, and the session id changes at sign-in. So the browser
// gets a value of its own, minted when its first flow starts and never
// renewed, whose digest the flow keeps. It proves nothing about a user
// (it is not signed, and a fresh one is worth as much as any other): it
// only tells the browser that started a flow from one a link was sent to.
func (m *Manager) Binding(r *http.Request) string {
	c, err := r.Cookie(m.bindName)
	if err != nil || len(c.Value) != bindingLen {
		return ""
	}
	return c.Value
}

// CarriesNone reports whether the request carries neither of stepup's
// cookies (the session's and the flow binding's, valid or not). Both are
// SameSite=Lax, so a browser withholds them from a POST that another
// site's page makes: such a request cannot tell a browser without them
// from one that has them.
func (m *Manager) CarriesNone(r *http.Request) bool {
	_, errSession := r.Cookie(m.name)
	_, errBinding := r.Cookie(m.bindName)
	return errSession != nil && errBinding != nil
}

// bindingLen is the length of NewID's values, which Binding accepts.
const bindingLen = 43

// SetBinding makes the browser carry the flow-binding value v, with the
// session cookie's attributes (HttpOnly, SameSite=Lax, Secure and
// __Host- on https) but no Max-Age: it lives as long as the browser
// runs, so it cannot expire in the middle of a flow.
func (m *Manager) SetBinding(w http.ResponseWriter, v string) {
	opts := *m.cookies.Options
	opts.MaxAge = 0
	http.SetCookie(w, sessions.NewCookie(m.bindName, v, &opts))
}

// ClearBinding removes the flow-binding value: the browser's pending
// sign-ins are no longer its own (sign-out ends them with the session).
func (m *Manager) ClearBinding(w http.ResponseWriter) {
	opts := *m.cookies.Options
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(m.bindName, "", &opts))
}

// NewID returns a fresh opaque session id (256 bits).
func NewID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// KeyDigest is what a Session keeps of the key its browser holds
// (Session.KeyHash): SHA-256, base64url.
func KeyDigest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// HeldBy reports whether key is the key of s (constant time). A session
// without a key is held by no browser.
func (s *Session) HeldBy(key string) bool {
	return s.KeyHash != "" && key != "" && subtle.ConstantTimeCompare([]byte(KeyDigest(key)), []byte(s.KeyHash)) == 1
}
