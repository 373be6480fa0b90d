package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// Hashes made by other tools, never by stepup:
//
//	htpasswd -nbB -C 5 carol 'carol bcrypt password'                                   (Debian apache2-utils)
//	echo -n 'dave argon2 password' | argon2 c2FsdHNhbHRzYWx0 -id -t 2 -m 15 -p 1 -e   (Debian argon2)
//	echo -n 'erin argon2i password' | argon2 c2FsdHNhbHRzYWx0 -i -t 3 -m 12 -p 1 -e
const (
	carolBcrypt  = "$2y$05$eHD3WfV3Y35z6qtZRXYJh.g9Gk5zDLDDQRtQn8lQpVFswnQR0YxdG"
	daveArgon2id = "$argon2id$v=19$m=32768,t=2,p=1$YzJGc2RITmhiSFJ6WVd4MA$Abs5p1eU3H/ZpSn/FdOQe8yg7WdSvYmmMdCyO79OYb0"
	erinArgon2i  = "$argon2i$v=19$m=4096,t=3,p=1$YzJGc2RITmhiSFJ6WVd4MA$yEiC7q0ol6Tjy1toVIjua/gmfIkXgWPWQPc++ia3TXM"
)

const usersJSONL = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol","externalId":"e-1","name":{"formatted":"Carol C."},"emails":[{"value":"carol@example.com","primary":true}],"phoneNumbers":[{"value":"+15555550111","type":"mobile"}],"urn:stepup:params:scim:schemas:extension:2.0:User":{"passwordHash":"` + carolBcrypt + `","totpSecret":"JBSWY3DPEHPK3PXP"}}
{"userName":"dave","displayName":"Dave","emails":[{"value":"d@old.example"},{"value":"dave@example.com","primary":true}],"urn:stepup:params:scim:schemas:extension:2.0:User":{"passwordHash":"` + daveArgon2id + `","emailMfa":true}}
{"id":"sub-erin","userName":"erin","active":false,"urn:stepup:params:scim:schemas:extension:2.0:User":{"passwordHash":"` + erinArgon2i + `"}}
{"userName":"frank","password":"frank's plain password"}
{"displayName":"no user name"}

{"userName":"gil","urn:stepup:params:scim:schemas:extension:2.0:User":{"passwordHash":"$2y$05$nope"}}
{"userName":
{"userName":"CAROL","emails":[{"value":"x@example.com"}],"id":"sub-other"}
`

func TestImport(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "stepup.db")
	cfg := writeConfigRedis(t, "sqlite:"+db, embeddedRedis(t))
	users := filepath.Join(dir, "users.jsonl")
	if err := os.WriteFile(users, []byte(usersJSONL), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(wantCode int, wantFirst string) string {
		t.Helper()
		var out, errs bytes.Buffer
		code := importUsers([]string{"-config", cfg, users}, &out, &errs)
		if code != wantCode || !strings.HasPrefix(out.String(), wantFirst) {
			t.Fatalf("import: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d and %q first", code, out.String(), errs.String(), wantCode, wantFirst)
		}
		return out.String()
	}
	out := run(1, "created 4, updated 0, skipped 0, failed 4\n")
	for _, want := range []string{"line 5: userName: required", "line 7: ", "passwordHash", "line 8: not a SCIM User", "line 9: userName \"CAROL\" belongs to another account"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	ctx := context.Background()
	keys, err := sqlstore.Keyring("sqlite:"+db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := accounttest.Open(t, "sqlite:"+db, keys)
	check := func(user, pw, email, name, phone, totp string, emailMFA, active bool) {
		t.Helper()
		a, err := s.AccountByUsername(ctx, user)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		r, err := s.Get(ctx, a.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if r.Email != email || r.Name != name || r.Phone != phone || r.TOTPSecret != totp || r.EmailMFA != emailMFA || r.Active != active {
			t.Errorf("%s = %+v", user, r)
		}
		if ok, err := password.Verify(r.PasswordHash, pw); err != nil || !ok {
			t.Errorf("%s: the imported hash does not verify the password: %v, %v", user, ok, err)
		}
	}
	check("carol", "carol bcrypt password", "carol@example.com", "Carol C.", "+15555550111", "JBSWY3DPEHPK3PXP", false, true)
	check("dave", "dave argon2 password", "dave@example.com", "Dave", "", "", true, true)
	check("erin", "erin argon2i password", "", "", "", "", false, false)
	check("frank", "frank's plain password", "", "", "", "", false, true)
	if a, err := s.GetAccount(ctx, "sub-erin"); err != nil || a.Username != "erin" {
		t.Errorf("erin's id is not her subject: %+v, %v", a, err)
	}
	if a, _ := s.AccountByUsername(ctx, "carol"); a != nil {
		if r, _ := s.Get(ctx, a.Subject); r == nil || r.ExternalID != "e-1" {
			t.Errorf("carol's externalId: %+v", r)
		}
	}

	// Twice: nothing changes.
	run(1, "created 0, updated 0, skipped 4, failed 4\n")

	// A changed line updates that account only.
	changed := strings.Replace(usersJSONL, `"formatted":"Carol C."`, `"formatted":"Carol D."`, 1)
	if err := os.WriteFile(users, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	run(1, "created 0, updated 1, skipped 3, failed 4\n")
	check("carol", "carol bcrypt password", "carol@example.com", "Carol D.", "+15555550111", "JBSWY3DPEHPK3PXP", false, true)

	// Only the good lines: exit 0.
	good := strings.Join(strings.Split(changed, "\n")[:4], "\n") + "\n"
	if err := os.WriteFile(users, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	run(0, "created 0, updated 0, skipped 4, failed 0\n")
}

func TestImportUsage(t *testing.T) {
	var out, errs bytes.Buffer
	if code := importUsers(nil, &out, &errs); code != 2 {
		t.Fatalf("no arguments: exit %d", code)
	}
	cfg := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(cfg, []byte("issuer: http://localhost:8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errs.Reset()
	if code := importUsers([]string{"-config", cfg, "x.jsonl"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "in memory") {
		t.Fatalf("in-memory database: exit %d, %q", code, errs.String())
	}
}

func embeddedRedis(t *testing.T) string {
	t.Helper()
	e, err := redisstore.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.URL()
}

// Disabling an account by import ends its sessions and grants at once:
// no refresh or access token of it is live afterwards.
func TestImportDisablingEndsSessions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	redisURL := embeddedRedis(t)
	cfg := writeConfigRedis(t, "sqlite:"+filepath.Join(dir, "stepup.db"), redisURL)
	users := filepath.Join(dir, "users.jsonl")
	imp := func(line, want string) {
		t.Helper()
		if err := os.WriteFile(users, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errs bytes.Buffer
		if code := importUsers([]string{"-config", cfg, users}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), want) {
			t.Fatalf("import: exit %d, %q %q; want %q", code, out.String(), errs.String(), want)
		}
	}
	imp(`{"id":"sub-ivy","userName":"ivy","password":"ivy's password 123"}`, "created 1,")

	short, err := redisstore.Open(config.Redis{URL: redisURL}, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	now := time.Now()
	sess := &session.Session{ID: session.NewID(), Subject: "sub-ivy", CreatedAt: now, LastSeenAt: now}
	if err := short.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	g := &session.Grant{ID: "grant-ivy", ClientID: "bank", Subject: "sub-ivy", SessionID: sess.ID, Offline: true, RefreshHash: "rh", ExpiresAt: now.Add(time.Hour)}
	if err := short.PutGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if live, err := short.AccessTokenLive(ctx, g.ID, g.Inc, "sub-ivy", "jti-1"); err != nil || !live {
		t.Fatalf("before: access token live %v, %v", live, err)
	}

	imp(`{"id":"sub-ivy","userName":"ivy","active":false}`, "created 0, updated 1,")
	if _, err := short.GetSession(ctx, sess.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the disabled user's session is still there: %v", err)
	}
	if _, err := short.LiveGrant(ctx, g.ID); err == nil {
		t.Error("the disabled user's grant is still live")
	}
	if live, err := short.AccessTokenLive(ctx, g.ID, g.Inc, "sub-ivy", "jti-1"); err != nil || live {
		t.Errorf("after: access token live %v, %v", live, err)
	}
}
