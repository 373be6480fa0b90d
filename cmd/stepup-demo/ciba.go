package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// "Approve on your phone": the bank asks stepup, over the back channel
// (OpenID CIBA, poll mode), to have the signed-in customer approve a
// withdrawal at the multi-factor level. stepup sends the customer a link
// (the demo's log provider prints it in stepupd's log); the customer
// authenticates and approves in any browser; the bank, polling the token
// endpoint, gets a token of that approval and withdraws with it.

const cibaGrant = "urn:openid:params:grant-type:ciba"

// cibaState is one backchannel withdrawal of a visitor.
type cibaState struct {
	Amount int
	// Status is waiting, done, or what went wrong.
	Status string
}

// uiWithdrawPhone starts a backchannel withdrawal of 10.00.
func (b *bank) uiWithdrawPhone(w http.ResponseWriter, r *http.Request) {
	v := b.visitor(w, r)
	b.mu.Lock()
	tok, busy := v.token, v.ciba != nil && v.ciba.Status == "waiting"
	b.mu.Unlock()
	if tok == nil || busy {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	hint, _ := tok.Extra("id_token").(string)
	const amount = 10
	st := &cibaState{Amount: amount, Status: "waiting"}
	arid, interval, expires, err := b.startCIBA(r.Context(), hint, fmt.Sprintf("Withdraw %d.00", amount))
	if err != nil {
		st.Status = err.Error()
	}
	b.mu.Lock()
	v.ciba = st
	b.mu.Unlock()
	if err == nil {
		go b.pollCIBA(v, st, arid, interval, expires)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// cibaPost posts a form to one of stepup's endpoints with the bank's
// client_secret_basic authentication and decodes the JSON answer.
func (b *bank) cibaPost(ctx context.Context, endpoint string, form url.Values, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(b.o.ClientID), url.QueryEscape(b.o.ClientSecret))
	resp, err := b.o.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(out)
}

type oauthErr struct {
	Error, Description string
}

func (e oauthErr) String() string {
	if e.Description == "" {
		return e.Error
	}
	return e.Error + ": " + e.Description
}

// startCIBA is the backchannel authentication request (CIBA Core §7.1):
// the customer is named by the ID token the bank holds for them.
func (b *bank) startCIBA(ctx context.Context, idTokenHint, binding string) (string, time.Duration, time.Time, error) {
	if _, _, err := b.oauth(ctx); err != nil {
		return "", 0, time.Time{}, err
	}
	var meta struct {
		Endpoint string `json:"backchannel_authentication_endpoint"`
	}
	if err := b.provider.Claims(&meta); err != nil || meta.Endpoint == "" {
		return "", 0, time.Time{}, fmt.Errorf("the provider does not offer CIBA")
	}
	var res struct {
		AuthReqID string `json:"auth_req_id"`
		ExpiresIn int    `json:"expires_in"`
		Interval  int    `json:"interval"`
		Err       string `json:"error"`
		Desc      string `json:"error_description"`
	}
	status, err := b.cibaPost(ctx, meta.Endpoint, url.Values{
		"scope": {"openid"}, "id_token_hint": {idTokenHint}, "binding_message": {binding}, "acr_values": {acrMFA},
	}, &res)
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("backchannel request: %w", err)
	}
	if status != http.StatusOK || res.AuthReqID == "" {
		return "", 0, time.Time{}, fmt.Errorf("stepup refused the request: %s", oauthErr{res.Err, res.Desc})
	}
	interval := time.Duration(max(res.Interval, 5)) * time.Second // CIBA Core §7.3: 5 s when absent
	return res.AuthReqID, interval, time.Now().Add(time.Duration(res.ExpiresIn) * time.Second), nil
}

// pollCIBA polls the token endpoint at the interval (adding 5 s at each
// slow_down, CIBA Core §11) until the customer decides or the request
// expires; with the approval's token it withdraws.
func (b *bank) pollCIBA(v *visitor, st *cibaState, arid string, interval time.Duration, expires time.Time) {
	status := func(s string) {
		b.mu.Lock()
		st.Status = s
		b.mu.Unlock()
	}
	for time.Now().Before(expires.Add(interval)) {
		time.Sleep(interval)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var res struct {
			oauth2.Token
			IDToken string `json:"id_token"`
			Err     string `json:"error"`
			Desc    string `json:"error_description"`
		}
		code, err := b.cibaPost(ctx, b.provider.Endpoint().TokenURL, url.Values{"grant_type": {cibaGrant}, "auth_req_id": {arid}}, &res)
		cancel()
		switch {
		case err != nil:
			status("polling failed: " + err.Error())
			return
		case res.Err == "authorization_pending":
			continue
		case res.Err == "slow_down":
			interval += 5 * time.Second
			continue
		case res.Err != "" || code != http.StatusOK || res.AccessToken == "":
			status("stepup answered " + oauthErr{res.Err, res.Desc}.String())
			return
		}
		tok := &oauth2.Token{AccessToken: res.AccessToken, TokenType: res.TokenType}
		b.callAPIWith(v, tok, http.MethodPost, "/api/withdraw", fmt.Sprintf(`{"amount": %d}`, st.Amount))
		status("done")
		return
	}
	status("expired")
}
