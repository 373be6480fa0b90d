package op

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// netipZero is "no client IP": a backchannel request comes from the
// client's server, not from the user, so there is no per-IP send cap.
var netipZero netip.Addr

// cibaSession is the session an approval flow is evaluated with: the
// user named by the request, holding only the verifications made in this
// flow. Its id names the flow, so that one-time codes and WebAuthn
// challenges bound to it belong to this approval alone.
func (p *Provider) cibaSession(f *Flow) *session.Session {
	now := p.now()
	return &session.Session{
		ID:            "ciba-" + f.ID,
		Subject:       f.HintSubject,
		CreatedAt:     f.Start,
		LastSeenAt:    now,
		Verifications: f.Verifications,
	}
}

// RecordVerification records v, verified on the hosted pages for flow f,
// in the browser's session sess (Elevate) — or, for a CIBA approval, in
// the flow alone: an approval neither creates nor elevates a session.
func (p *Provider) RecordVerification(ctx context.Context, w http.ResponseWriter, f *Flow, sess *session.Session, v authn.Verification) error {
	if !f.keepsVerifications() {
		return p.Elevate(ctx, w, sess, v)
	}
	if sess == nil || sess.Subject != f.HintSubject {
		return f.ended()
	}
	vs := make([]authn.Verification, 0, len(f.Verifications)+1)
	for _, x := range f.Verifications {
		if x.Factor != v.Factor {
			vs = append(vs, x)
		}
	}
	f.Verifications = append(vs, v)
	if err := p.SaveFlow(ctx, f); errors.Is(err, session.ErrNotFound) {
		return f.ended()
	} else if err != nil {
		return err
	}
	return nil
}

// ErrApprovalEnded is RecordVerification's answer when an approval flow
// has run out (or names another user): nothing was recorded. Unlike a
// missing session it says nothing about the browser's own session, which
// must be left alone.
var ErrApprovalEnded = errors.New("the approval flow has ended")

// ErrResetEnded is ErrApprovalEnded for a password reset's flow (which
// also keeps its verifications to itself): its page must speak of the
// reset, not of an approval.
var ErrResetEnded = fmt.Errorf("the password reset has ended: %w", ErrApprovalEnded)

// ended is the error of a flow that keeps its verifications and has run
// out.
func (f *Flow) ended() error {
	if f.IsReset() {
		return ErrResetEnded
	}
	return ErrApprovalEnded
}

// IsCIBA reports whether f approves a backchannel request.
func (f *Flow) IsCIBA() bool { return f.CIBA != nil }

// finishCIBA ends the authentication part of an approval: reached, the
// user is asked to approve or deny; failed or cancelled, the request is
// denied.
func (p *Provider) finishCIBA(w http.ResponseWriter, r *http.Request, f *Flow, c *Client, d authn.Decision) {
	if d.Outcome == authn.OK && !f.Cancelled && d.ACR != "" && len(d.AMR) > 0 {
		p.pages.CIBAApproval(w, r, f, c.Name(), d.ACR)
		return
	}
	reason := d.Error
	if f.Cancelled {
		reason = "cancelled"
	}
	p.decideCIBA(w, r, f, c, nil, reason)
}

// ApproveCIBA records the user's approval of flow f's request, with the
// acr, amr and auth_time the policy computes from the flow's own
// verifications now; if they no longer reach the level (an elevation
// lifetime passed), the user goes back to the factor pages.
func (p *Provider) ApproveCIBA(w http.ResponseWriter, r *http.Request, f *Flow, c *Client, acct *session.Account) {
	d := p.Decide(f, c, p.cibaSession(f), acct)
	if d.Outcome != authn.OK || d.ACR == "" || len(d.AMR) == 0 {
		http.Redirect(w, r, p.issuer+PathLoginPrefix+f.ID, http.StatusSeeOther)
		return
	}
	p.decideCIBA(w, r, f, c, &d, "")
}

// DenyCIBA records the user's refusal of flow f's request.
func (p *Provider) DenyCIBA(w http.ResponseWriter, r *http.Request, f *Flow, c *Client) {
	p.decideCIBA(w, r, f, c, nil, "denied")
}

func (p *Provider) decideCIBA(w http.ResponseWriter, r *http.Request, f *Flow, c *Client, d *authn.Decision, reason string) {
	ctx := r.Context()
	var result []byte
	if d != nil {
		var err error
		result, err = json.Marshal(cibaResult{
			authClaims: authClaims{Subject: f.HintSubject, ACR: d.ACR, AMR: d.AMR, AuthTime: d.AuthTime.Unix()},
			Scopes:     f.Scopes,
		})
		if err != nil {
			p.pages.Error(w, r, http.StatusInternalServerError, "error.ciba_not_recorded")
			return
		}
	}
	err := p.store.DecideCIBA(ctx, f.CIBA.Request, f.ID, d != nil, result, p.now())
	if errors.Is(err, session.ErrFlowEnded) {
		p.dropFlow(ctx, f)
		p.pages.Error(w, r, http.StatusGone, "error.ciba_ended")
		return
	}
	if err != nil {
		p.Unavailable(w, r, err)
		return
	}
	p.dropFlow(ctx, f)
	if d != nil {
		p.Audit(ctx, obs.EventCIBAApproved, "client_id", c.GetID(), "sub", f.HintSubject, "request", f.CIBA.Request,
			"acr", d.ACR, "amr", d.AMR, "auth_time", d.AuthTime.Unix())
	} else {
		p.Audit(ctx, obs.EventCIBADenied, "client_id", c.GetID(), "sub", f.HintSubject, "request", f.CIBA.Request, "reason", reason)
	}
	p.pingCIBA(ctx, c, f.CIBA.Request)
	p.pages.CIBADone(w, r, d != nil)
}

// pingCIBA notifies a ping-mode client that its request has a result
// (CIBA Core §10.2): a POST of {"auth_req_id"} with its
// client_notification_token as bearer token. It is called after the
// decision is stored, so a client that misses the ping can still poll.
func (p *Provider) pingCIBA(ctx context.Context, c *Client, id string) {
	if c.cfg.CIBA.Mode != "ping" {
		return
	}
	var cd cibaData
	raw, err := p.store.CIBAData(ctx, id)
	if err == nil {
		err = json.Unmarshal(raw, &cd)
	}
	if err == nil && (cd.AuthReqID == "" || cd.NotificationToken == "") {
		err = errors.New("the request has no notification token")
	}
	if err == nil {
		body, _ := json.Marshal(map[string]string{"auth_req_id": cd.AuthReqID})
		var req *http.Request
		req, err = http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, c.cfg.CIBA.NotificationEndpoint, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+cd.NotificationToken)
			var resp *http.Response
			if resp, err = p.httpClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					err = errors.New("notification endpoint answered " + resp.Status)
				}
			}
		}
	}
	if err != nil {
		p.Audit(ctx, obs.EventCIBAPinged, "client_id", c.GetID(), "request", id, "err", err.Error())
		return
	}
	p.Audit(ctx, obs.EventCIBAPinged, "client_id", c.GetID(), "request", id)
}
