package redisstore

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// openBoth is the embedded store and, when STEPUP_TEST_REDIS_URL names
// one, a store on that real Redis under a prefix of its own.
func openBoth(t *testing.T) map[string]*Store {
	t.Helper()
	out := map[string]*Store{"miniredis": openEmbedded(t)}
	if u := os.Getenv("STEPUP_TEST_REDIS_URL"); u != "" {
		// A prefix as long as "stepup:", so that key sizes are the
		// deployment's.
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		s, err := Open(config.Redis{URL: u}, Options{Prefix: hex.EncodeToString(b) + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Purge(t.Context()); _ = s.Close() })
		out["redis"] = s
	}
	return out
}

// A session record in this version's form: times in seconds, a
// verification as its nanoseconds and flags (issue 18: Redis bytes per
// login). Fails with the JSON verification or nanosecond stamps back.
func TestSessionRecordCompact(t *testing.T) {
	for name, s := range openBoth(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Now()
			sess := &session.Session{ID: "VbUBVlzZS_ML80jBXfgvnPmVHJ58NViS1gaxKoZwgeU", Subject: "7541a93012901a34530f80af8e9ed368",
				KeyHash: session.KeyDigest("k"), CreatedAt: now, LastSeenAt: now, ClientIDs: []string{"bench"},
				Verifications: []authn.Verification{{Factor: authn.Password, At: now}, {Factor: authn.WebAuthn, At: now.Add(time.Second), UV: true, Hardware: true}}}
			if err := s.CreateSession(ctx, sess, time.Minute); err != nil {
				t.Fatal(err)
			}
			m, err := s.c.HGetAll(ctx, s.k.session(sess.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			digits := regexp.MustCompile(`^[0-9]{10}$`)
			if !digits.MatchString(m[fieldCreated]) || !digits.MatchString(m[fieldSeen]) {
				t.Errorf("created %q, seen %q: want unix seconds", m[fieldCreated], m[fieldSeen])
			}
			if want := unixNano(now); m["v:pwd"] != want {
				t.Errorf("v:pwd = %q, want %q", m["v:pwd"], want)
			}
			if want := unixNano(now.Add(time.Second)) + "uh"; m["v:webauthn"] != want {
				t.Errorf("v:webauthn = %q, want %q", m["v:webauthn"], want)
			}
			got, err := s.GetSession(ctx, sess.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.CreatedAt.Equal(now.Truncate(time.Second)) || len(got.Verifications) != 2 ||
				got.Verifications[0] != (authn.Verification{Factor: authn.Password, At: now.UTC().Round(0)}) ||
				got.Verifications[1] != (authn.Verification{Factor: authn.WebAuthn, At: now.Add(time.Second).UTC().Round(0), UV: true, Hardware: true}) {
				t.Fatalf("read back %+v", got)
			}
			if name != "redis" {
				return
			}
			// A bench-shaped sign-in (one password verification, one
			// client, its online grant) fits jemalloc's 192-byte class: 296 B
			// in all on Redis 7.0, where the JSON and nanoseconds took 360.
			// Its view of the account (the largest: every factor named) is
			// a listpack integer and fits too.
			if err := s.CreateSession(ctx, &session.Session{ID: sess.ID, Subject: sess.Subject, KeyHash: sess.KeyHash,
				CreatedAt: now, LastSeenAt: now, ClientIDs: []string{"bench"}, View: "8191",
				Verifications: []authn.Verification{{Factor: authn.Password, At: now}}}, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := s.c.HSet(ctx, s.k.session(sess.ID), prefixGrant+"q02UZAP9MBk_ZvLaHBvZSrI2", "0").Err(); err != nil {
				t.Fatal(err)
			}
			enc, _ := s.c.ObjectEncoding(ctx, s.k.session(sess.ID)).Result()
			n, err := s.c.MemoryUsage(ctx, s.k.session(sess.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if enc != "listpack" || n > 296 {
				t.Errorf("session record: %s, %d B; want a listpack of at most 296 B", enc, n)
			}
		})
	}
}

// Sessions an earlier version wrote (nanosecond stamps, JSON
// verifications) are read, and "seen" still moves only forward when this
// version touches them in seconds, whichever form it holds.
func TestLegacySessionRecord(t *testing.T) {
	for name, s := range openBoth(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			t0 := time.Unix(1796691246, 695960660)
			key := s.k.session("S")
			if err := s.c.HSet(ctx, key, fieldSub, "u", fieldKey, "kh", fieldCreated, unixNano(t0), fieldSeen, unixNano(t0),
				"v:pwd", `{"f":"pwd","at":"2026-12-08T00:54:06.69596066Z"}`,
				"v:webauthn", `{"f":"webauthn","at":"2026-12-08T00:54:07Z","uv":true,"hw":true}`, "c:web", "1").Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.c.PExpire(ctx, key, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetSession(ctx, "S")
			if err != nil {
				t.Fatal(err)
			}
			if !got.CreatedAt.Equal(t0) || !got.LastSeenAt.Equal(t0) || len(got.Verifications) != 2 ||
				!got.Verifications[0].At.Equal(t0) || got.Verifications[0].Factor != authn.Password ||
				got.Verifications[1] != (authn.Verification{Factor: authn.WebAuthn, At: time.Unix(1796691247, 0).UTC(), UV: true, Hardware: true}) {
				t.Fatalf("legacy session read as %+v", got)
			}
			seen := func() string { return s.c.HGet(ctx, key, fieldSeen).Val() }
			// The same second, and a second earlier: the nanoseconds stay.
			for _, at := range []time.Time{t0.Truncate(time.Second), t0.Add(-time.Second)} {
				if err := s.Touch(ctx, "S", "u", at, "", time.Minute); err != nil {
					t.Fatal(err)
				}
				if v := seen(); v != unixNano(t0) {
					t.Fatalf("Touch(%v) moved seen from %s to %s", at, unixNano(t0), v)
				}
			}
			// A later second moves it, in seconds; an earlier version's
			// nanoseconds after that move it again only when later.
			if err := s.Touch(ctx, "S", "u", t0.Add(time.Second), "", time.Minute); err != nil {
				t.Fatal(err)
			}
			if v := seen(); v != "1796691247" {
				t.Fatalf("seen = %s, want 1796691247", v)
			}
			if err := s.Elevate(ctx, "S", "u", "kh", "kh2", authn.Verification{Factor: authn.TOTP, At: t0}, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := s.c.HSet(ctx, key, fieldSeen, unixNano(t0.Add(3*time.Second))).Err(); err != nil { // an earlier version's touch
				t.Fatal(err)
			}
			u := session.StepUp{SessionID: "S", Subject: "u", OldKeyHash: "kh2", NewKeyHash: "kh3", TTL: time.Minute,
				V: authn.Verification{Factor: authn.TOTP, At: t0}, At: t0.Add(2 * time.Second), ClientID: "web",
				Code: &session.Code{Hash: "h", GrantID: "g", Binding: "b", Data: []byte("d"), TTL: time.Minute, SpentTTL: time.Minute}}
			if _, err := s.ElevateAndIssue(ctx, u); err != nil {
				t.Fatal(err)
			}
			if v := seen(); v != unixNano(t0.Add(3*time.Second)) {
				t.Fatalf("an elevation two seconds after t0 moved seen back from t0+3s: %s", v)
			}
			u.OldKeyHash, u.NewKeyHash, u.At = "kh3", "kh4", t0.Add(4*time.Second)
			if _, err := s.ElevateAndIssue(ctx, u); err != nil {
				t.Fatal(err)
			}
			if v := seen(); v != "1796691250" {
				t.Fatalf("seen = %s after an elevation at t0+4s, want 1796691250", v)
			}
		})
	}
}

// A verification field this version cannot read refuses the session.
func TestUnreadableVerification(t *testing.T) {
	for _, v := range []string{"", "abc", "12x", "-5", "+5", "1796691246695960660uu", "1796691246695960660hh", "u", "{"} {
		if _, err := parseVerification("v:pwd", v); err == nil {
			t.Errorf("parseVerification(%q) = nil error", v)
		}
	}
	for v, want := range map[string]authn.Verification{
		"5":   {Factor: authn.Password, At: time.Unix(0, 5).UTC()},
		"5hu": {Factor: authn.Password, At: time.Unix(0, 5).UTC(), UV: true, Hardware: true},
	} {
		if got, err := parseVerification("v:pwd", v); err != nil || got != want {
			t.Errorf("parseVerification(%q) = %+v, %v; want %+v", v, got, err, want)
		}
	}
}

// A grant stores a session id of session.NewID in 33 bytes and reads it
// back; any other id, and the ids earlier versions stored, as they are.
// On a real Redis a sign-in's grant (the provider's compact payload) is
// in jemalloc's 256-byte class: 344 B in all, where it took 408.
func TestGrantSessionIDPacked(t *testing.T) {
	for name, s := range openBoth(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			sid := session.NewID()
			if err := s.CreateSession(ctx, &session.Session{ID: sid, Subject: "4a4b480a3b33533be9e2c13a8b4ffc11", CreatedAt: time.Now()}, time.Minute); err != nil {
				t.Fatal(err)
			}
			g := &session.Grant{ID: "u4xWcWyzKW5W5M1JxAaVxF76", Auth: "-U9Nk6cqR0OcCmKs", ClientID: "bench", Subject: "4a4b480a3b33533be9e2c13a8b4ffc11",
				SessionID: sid, RefreshHash: "yCBq5AwZA2bqaQyAaXWQ6003HBS09nvBAy-A40SL3O4", ExpiresAt: time.Now().Add(time.Minute),
				Data: []byte("1urn:stepup:loa:1fa\x1fpwd\x1f1796691251\x1fopenid profile")}
			if err := s.PutGrant(ctx, g); err != nil {
				t.Fatal(err)
			}
			if v := s.c.HGet(ctx, s.k.grant(g.ID), grantSessionID).Val(); len(v) != 33 || v[0] != 0 {
				t.Errorf("stored sid %q, want NUL and 32 bytes", v)
			}
			got, err := s.LiveGrant(ctx, g.ID)
			if err != nil || got.SessionID != sid || string(got.Data) != string(g.Data) {
				t.Fatalf("LiveGrant = %+v, %v", got, err)
			}
			if name == "redis" {
				enc, _ := s.c.ObjectEncoding(ctx, s.k.grant(g.ID)).Result()
				if n := s.c.MemoryUsage(ctx, s.k.grant(g.ID)).Val(); enc != "listpack" || n > 344 {
					t.Errorf("grant record: %s, %d B; want a listpack of at most 344 B", enc, n)
				}
			}
			// An earlier version's field, and ids that are not packed.
			for _, id := range []string{sid, "reset-abc", "bench-session-id-0000000000000000000000001", ""} {
				if p := packSessionID(id); unpackSessionID(p) != id || (p != id) != (id == sid) {
					t.Errorf("packSessionID(%q) = %q, read back %q", id, p, unpackSessionID(p))
				}
			}
			if err := s.c.HSet(ctx, s.k.grant(g.ID), grantSessionID, sid).Err(); err != nil {
				t.Fatal(err)
			}
			if got, err := s.LiveGrant(ctx, g.ID); err != nil || got.SessionID != sid {
				t.Fatalf("a grant with the sid as text: %+v, %v", got, err)
			}
		})
	}
}
