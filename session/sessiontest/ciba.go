package sessiontest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// The CIBAStore conformance tests: every step of a backchannel request
// is one atomic operation, on one Cluster slot.
var cibaTests = []struct {
	name string
	fn   func(t *testing.T, s session.Store)
}{
	{"CIBA", testCIBA},
	{"CIBAConcurrentPolls", testCIBAConcurrentPolls},
}

func newCIBA(now time.Time) session.CIBARequest {
	return session.CIBARequest{
		ID: newID(), ClientID: "teller", Subject: "sub-" + newID(),
		AuthReqHash: "arh", LinkHash: "lh", Data: binary,
		Expires: now.Add(time.Minute), Life: time.Minute, Keep: time.Minute, Interval: 5 * time.Second,
	}
}

func testCIBA(t *testing.T, s session.Store) {
	ctx := t.Context()
	now := time.Now()
	r := newCIBA(now)
	if err := s.StartCIBA(ctx, r); err != nil {
		t.Fatal(err)
	}
	// One pending request per (client, subject).
	again := r
	again.ID = newID()
	if err := s.StartCIBA(ctx, again); !errors.Is(err, session.ErrCIBAPending) {
		t.Fatalf("second StartCIBA for the pair: %v, want ErrCIBAPending", err)
	}
	// Another client, or another subject, is another pair.
	other := newCIBA(now)
	other.Subject = r.Subject
	other.ClientID = "other"
	if err := s.StartCIBA(ctx, other); err != nil {
		t.Fatalf("another client's request: %v", err)
	}

	// Polls: the digest and the client must match; the interval holds.
	for _, bad := range []struct{ arh, client string }{{"wrong", "teller"}, {"arh", "other"}} {
		if _, err := s.PollCIBA(ctx, r.ID, bad.arh, bad.client, now); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("PollCIBA(%q, %q) = %v, want ErrNotFound", bad.arh, bad.client, err)
		}
	}
	p, err := s.PollCIBA(ctx, r.ID, "arh", "teller", now)
	if err != nil || p.State != session.CIBAPending || p.SlowDown || p.Interval != 5*time.Second {
		t.Fatalf("first poll = %+v, %v", p, err)
	}
	p, err = s.PollCIBA(ctx, r.ID, "arh", "teller", now.Add(time.Second))
	if err != nil || !p.SlowDown || p.Interval != 10*time.Second {
		t.Fatalf("early poll = %+v, %v; want slow_down with 10 s", p, err)
	}
	p, err = s.PollCIBA(ctx, r.ID, "arh", "teller", now.Add(12*time.Second))
	if err != nil || p.State != session.CIBAPending || p.SlowDown {
		t.Fatalf("poll after the interval = %+v, %v", p, err)
	}

	// Opening: the first flow binds; the link digest must match.
	if _, err := s.OpenCIBA(ctx, r.ID, "wrong", "f1", now); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("OpenCIBA with another link: %v", err)
	}
	o, err := s.OpenCIBA(ctx, r.ID, "lh", "f1", now)
	if err != nil || o.Flow != "f1" || o.State != session.CIBAPending || o.ClientID != "teller" || o.Subject != r.Subject || !bytes.Equal(o.Data, binary) {
		t.Fatalf("OpenCIBA = %+v, %v", o, err)
	}
	if o, err := s.OpenCIBA(ctx, r.ID, "lh", "f2", now); err != nil || o.Flow != "f1" {
		t.Fatalf("second OpenCIBA = %+v, %v; want still bound to f1", o, err)
	}
	if d, err := s.CIBAData(ctx, r.ID); err != nil || !bytes.Equal(d, binary) {
		t.Fatalf("CIBAData = %q, %v", d, err)
	}

	// Deciding: only from the bound flow, once.
	if err := s.DecideCIBA(ctx, r.ID, "f2", true, []byte("r"), now); !errors.Is(err, session.ErrFlowEnded) {
		t.Fatalf("DecideCIBA from another flow: %v", err)
	}
	if err := s.DecideCIBA(ctx, r.ID, "f1", true, []byte("result"), now); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideCIBA(ctx, r.ID, "f1", false, nil, now); !errors.Is(err, session.ErrFlowEnded) {
		t.Fatalf("second DecideCIBA: %v", err)
	}
	// The pair is free again.
	if err := s.StartCIBA(ctx, again); err != nil {
		t.Fatalf("StartCIBA after the decision: %v", err)
	}
	// The approval is taken once.
	p, err = s.PollCIBA(ctx, r.ID, "arh", "teller", now.Add(30*time.Second))
	if err != nil || p.State != session.CIBAApproved || string(p.Result) != "result" {
		t.Fatalf("poll of the approval = %+v, %v", p, err)
	}
	p, err = s.PollCIBA(ctx, r.ID, "arh", "teller", now.Add(60*time.Second))
	if err != nil || p.State != session.CIBAUsed || p.Result != nil {
		t.Fatalf("poll after the take = %+v, %v", p, err)
	}

	// Denied, and expired.
	if _, err := s.OpenCIBA(ctx, other.ID, "lh", "g", now); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideCIBA(ctx, other.ID, "g", false, nil, now); err != nil {
		t.Fatal(err)
	}
	if p, err := s.PollCIBA(ctx, other.ID, "arh", "other", now); err != nil || p.State != session.CIBADenied {
		t.Fatalf("poll of a denial = %+v, %v", p, err)
	}
	late := now.Add(2 * time.Minute)
	if p, err := s.PollCIBA(ctx, again.ID, "arh", "teller", late); err != nil || p.State != "expired" {
		t.Fatalf("poll after expiry = %+v, %v", p, err)
	}
	if o, err := s.OpenCIBA(ctx, again.ID, "lh", "h", late); err != nil || o.State != "expired" || o.Flow != "" {
		t.Fatalf("OpenCIBA after expiry = %+v, %v", o, err)
	}
	if err := s.DecideCIBA(ctx, again.ID, "", true, []byte("x"), late); !errors.Is(err, session.ErrFlowEnded) {
		t.Fatalf("DecideCIBA after expiry: %v", err)
	}
	if _, err := s.PollCIBA(ctx, newID(), "arh", "teller", now); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("poll of an unknown request: %v", err)
	}
}

// Of concurrent polls of an approved request exactly one gets it.
func testCIBAConcurrentPolls(t *testing.T, s session.Store) {
	ctx := t.Context()
	now := time.Now()
	r := newCIBA(now)
	if err := s.StartCIBA(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenCIBA(ctx, r.ID, "lh", "f", now); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideCIBA(ctx, r.ID, "f", true, []byte("tokens"), now); err != nil {
		t.Fatal(err)
	}
	const n = 16
	polls := make([]session.CIBAPoll, n)
	errs := make([]error, n)
	race(n, func(i int) { polls[i], errs[i] = s.PollCIBA(ctx, r.ID, "arh", "teller", now) })
	taken := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if polls[i].State == session.CIBAApproved {
			taken++
		} else if polls[i].State != session.CIBAUsed {
			t.Errorf("poll #%d = %+v", i, polls[i])
		}
	}
	if taken != 1 {
		t.Fatalf("%d of %d concurrent polls took the approval, want 1", taken, n)
	}
}
