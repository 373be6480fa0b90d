package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SCIM modes (not part of "all"): what a provisioning client (Entra ID,
// Okta) does to a store holding many users.
//
//	scim-create  POST /scim/v2/Users: a new user (userName, externalId, a
//	             work email, a name; no password, as provisioning clients
//	             send none), 201 expected. With -scim-count N the mode
//	             creates N users and stops, whatever -duration says (the
//	             way to fill a store).
//	scim-list    GET /scim/v2/Users?filter=… for each kind of
//	             -scim-filters, one row each, on users an earlier
//	             scim-create made (-scim-prefix, -scim-existing): a lookup
//	             must find exactly one.
//
// The token is a client_credentials token with scope stepup:scim, taken
// again before it expires.
var scimModes = []string{"scim-create", "scim-list"}

// scimFilterKinds are the filters scim-list can run, by name.
var scimFilterKinds = map[string]string{
	"username":   `userName eq "%s"`,
	"email":      `emails.value eq "%s@example.com"`,
	"externalid": `externalId eq "ext-%s"`,
	"and-active": `userName eq "%s" and active eq true`,
	// Not a lookup: one page of 100 from the middle of every user, the
	// way a client that syncs everything pages (no filter).
	"page": "",
}

const scimUserSchema = "urn:ietf:params:scim:schemas:core:2.0:User"

type scimConfig struct {
	prefix   string // userName of user i is prefix + i
	count    int64  // scim-create: users to create, 0 = until -duration
	start    int64  // scim-create: first index
	existing int64  // scim-list: users 0…existing-1 exist
	filters  []string
}

// scimToken is the bearer token of the SCIM calls, shared by the workers.
type scimToken struct {
	mu      sync.Mutex
	tok     string
	expires time.Time
}

func (b *bench) scimBearer(ctx context.Context) (string, error) {
	t := &b.scimTok
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != "" && time.Until(t.expires) > 30*time.Second {
		return t.tok, nil
	}
	out, err := b.postToken(ctx, "token (scim)", b.ccClientID, b.ccClientSecret,
		url.Values{"grant_type": {"client_credentials"}, "scope": {"stepup:scim"}})
	if err != nil {
		return "", err
	}
	t.tok, _ = out["access_token"].(string)
	sec, _ := out["expires_in"].(float64)
	if sec <= 0 {
		sec = 60
	}
	t.expires = time.Now().Add(time.Duration(sec) * time.Second)
	return t.tok, nil
}

// scimCall sends one SCIM request and returns the answer's body when the
// status is want.
func (b *bench) scimCall(ctx context.Context, step, method, path string, body []byte, want int) ([]byte, error) {
	tok, err := b.scimBearer(ctx)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(b.issuer, "/")+"/scim/v2"+path, rd)
	if err != nil {
		return nil, stepErr(step, "bad url", "%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/scim+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := b.api.Do(req)
	if err != nil {
		return nil, stepErr(step, "transport", "%v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, stepErr(step, "transport", "reading body: %v", err)
	}
	if resp.StatusCode != want {
		return nil, stepErr(step, fmt.Sprintf("status %d", resp.StatusCode), "%s", excerpt(string(raw), 300))
	}
	return raw, nil
}

// opSCIMCreate creates user i.
func (b *bench) opSCIMCreate(ctx context.Context, name string) error {
	u := map[string]any{
		"schemas":    []string{scimUserSchema},
		"userName":   name,
		"externalId": "ext-" + name,
		"name":       map[string]string{"formatted": "Bench " + name},
		"emails":     []map[string]any{{"value": name + "@example.com", "type": "work", "primary": true}},
		"active":     true,
	}
	body, _ := json.Marshal(u)
	raw, err := b.scimCall(ctx, "scim create", http.MethodPost, "/Users", body, http.StatusCreated)
	if err != nil {
		return err
	}
	var got struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || got.ID == "" || !strings.EqualFold(got.UserName, name) {
		return stepErr("scim create", "bad answer", "%s", excerpt(string(raw), 200))
	}
	return nil
}

// opSCIMList runs one list request of a filter kind; a lookup of an
// existing user must find that one user, a page must be full.
func (b *bench) opSCIMList(ctx context.Context, kind, name string, total int64) error {
	q := url.Values{}
	want := 1
	if kind == "page" {
		q.Set("startIndex", fmt.Sprint(total/2+1))
		q.Set("count", "100")
		want = 100
	} else {
		q.Set("filter", fmt.Sprintf(scimFilterKinds[kind], name))
	}
	raw, err := b.scimCall(ctx, "scim list", http.MethodGet, "/Users?"+q.Encode(), nil, http.StatusOK)
	if err != nil {
		return err
	}
	var got struct {
		TotalResults int `json:"totalResults"`
		Resources    []struct {
			UserName string `json:"userName"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return stepErr("scim list", "bad json", "%v", err)
	}
	if len(got.Resources) != want {
		return stepErr("scim list", fmt.Sprintf("%d results", len(got.Resources)), "want %d: %s", want, excerpt(string(raw), 200))
	}
	if kind != "page" && !strings.EqualFold(got.Resources[0].UserName, name) {
		return stepErr("scim list", "wrong user", "%s, want %s", got.Resources[0].UserName, name)
	}
	return nil
}

// scimOp returns the operation of a SCIM mode ("scim-create" or
// "scim-list:KIND") and whether the mode ends by count.
func (b *bench) scimOp(mode string, c scimConfig) (op func(context.Context, int) error, note string, err error) {
	switch {
	case mode == "scim-create":
		var next atomic.Int64
		next.Store(c.start)
		var mark struct {
			sync.Mutex
			at time.Time
		}
		mark.at = time.Now()
		end := int64(-1)
		if c.count > 0 {
			end = c.start + c.count
			note = fmt.Sprintf("creates users %d…%d", c.start, end-1)
		}
		return func(ctx context.Context, _ int) error {
			i := next.Add(1) - 1
			if end >= 0 && i >= end {
				return errPoolEmpty
			}
			if n := i - c.start; n > 0 && n%10000 == 0 {
				// A long fill shows how the rate holds as the table grows.
				now := time.Now()
				mark.Lock()
				rate := 10000 / now.Sub(mark.at).Seconds()
				mark.at = now
				mark.Unlock()
				fmt.Fprintf(os.Stderr, "  %s: %d users created, the last 10000 at %.0f/s\n", now.Format("15:04:05"), n, rate)
			}
			return b.opSCIMCreate(ctx, fmt.Sprintf("%s%d", c.prefix, i))
		}, note, nil
	case strings.HasPrefix(mode, "scim-list:"):
		kind := strings.TrimPrefix(mode, "scim-list:")
		if _, ok := scimFilterKinds[kind]; !ok {
			return nil, "", fmt.Errorf("-scim-filters: unknown kind %q", kind)
		}
		if c.existing <= 0 {
			return nil, "", fmt.Errorf("scim-list needs -scim-existing (users %s0… made by scim-create)", c.prefix)
		}
		if kind == "page" {
			note = fmt.Sprintf("startIndex=%d count=100, no filter", c.existing/2+1)
		} else {
			note = "filter=" + fmt.Sprintf(scimFilterKinds[kind], c.prefix+"N") + fmt.Sprintf(", N random < %d", c.existing)
		}
		return func(ctx context.Context, _ int) error {
			return b.opSCIMList(ctx, kind, fmt.Sprintf("%s%d", c.prefix, rand.Int64N(c.existing)), c.existing)
		}, note, nil
	}
	return nil, "", fmt.Errorf("unknown SCIM mode %q", mode)
}
