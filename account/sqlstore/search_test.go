package sqlstore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/session"
)

// A page of Search is the accounts in creation order, each whole (TOTP
// secret opened, passkeys, recovery-code count), read in one query for
// the page rather than one per account.
func TestSearchPages(t *testing.T) {
	var clock time.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := sqlstore.Open(t.Context(), accounttest.NewURL(t), sqlstore.Options{Keys: accounttest.Keys(t),
		Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	// Subjects in the reverse of creation order: the page must follow
	// created_at, not the subject.
	const n = 7
	for i := range n {
		sub := fmt.Sprintf("sub-%d", n-i)
		if _, err := s.Create(ctx, &account.Record{Account: session.Account{Subject: sub, Username: fmt.Sprintf("u%d", i),
			TOTPSecret: totpSecret}, Active: i != 3}); err != nil {
			t.Fatal(err)
		}
		for k := range i % 3 {
			if err := s.PutPasskey(ctx, sub, session.StoredPasskey{ID: fmt.Sprintf("pk%d", k), Data: []byte{byte(i), byte(k)}}); err != nil {
				t.Fatal(err)
			}
		}
		if i == 4 {
			if err := s.SetRecoveryCodes(ctx, sub, []string{"h1", "h2"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	recs, total, err := s.Search(ctx, account.Query{Offset: 2, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Username)
		want, err := s.Get(ctx, r.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if r.TOTPSecret != totpSecret || !slices.EqualFunc(r.Passkeys, want.Passkeys, func(a, b session.StoredPasskey) bool {
			return a.ID == b.ID && string(a.Data) == string(b.Data)
		}) || r.RecoveryCodes != want.RecoveryCodes || r.Disabled != want.Disabled || r.Version != want.Version {
			t.Errorf("%s from Search: %+v\nfrom Get: %+v", r.Username, r, want)
		}
	}
	if total != n || !slices.Equal(names, []string{"u2", "u3", "u4"}) {
		t.Fatalf("page = %v of %d, want [u2 u3 u4] of %d", names, total, n)
	}
	if len(recs[0].Passkeys) != 2 || recs[2].RecoveryCodes != 2 || !recs[1].Disabled {
		t.Fatalf("page lost a passkey, the recovery count or the disabled flag: %+v", recs)
	}
	no := false
	recs, total, err = s.Search(ctx, account.Query{Active: &no, Limit: 10})
	if err != nil || total != 1 || len(recs) != 1 || recs[0].Username != "u3" {
		t.Fatalf("active eq false = %v (%d), %v; want u3", recs, total, err)
	}
}
