package authn

import (
	"fmt"
	"slices"
	"time"
)

// OAuth error codes a Decision may carry (OIDC Core 3.1.2.6, RFC 6749
// 4.1.2.1, OpenID Connect Unmet Authentication Requirements 1.0).
const (
	ErrLoginRequired       = "login_required"
	ErrInteractionRequired = "interaction_required"
	ErrAccessDenied        = "access_denied"
	ErrUnmetRequirements   = "unmet_authentication_requirements"
)

// String returns the outcome's name, for logs and test failures.
func (o Outcome) String() string {
	switch o {
	case OK:
		return "OK"
	case Need:
		return "Need"
	case Enroll:
		return "Enroll"
	case Fail:
		return "Fail"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// defaultOrder is the order second factors are offered in when the user
// has not used one yet (PRODUCT.md §5): the strongest first, recovery codes
// last because each one is spent.
var defaultOrder = []Factor{WebAuthn, TOTP, SMS, Email, Recovery}

// Evaluate decides what an authorization request gets from the session's
// verifications (PRODUCT.md §3): a code (OK, with the acr, amr and
// auth_time to issue), a page (Need or Enroll), or an OAuth error (Fail).
//
// Configuration errors the caller should have rejected earlier — a
// ClientMinACR the ladder does not know, MFAAlways on a ladder without a
// multi-factor level, an empty ladder — fail closed with
// unmet_authentication_requirements rather than issue a weaker acr.
//
// When no verification counts and acct is the zero Account (the user is not
// known yet), the answer is Need [pwd]: the login page identifies the user,
// and the request is judged again once the account is known.
func (l Ladder) Evaluate(req Request, verifs []Verification, acct Account, now time.Time) Decision {
	e := newEvaluation(l, req, verifs, acct, now)
	return e.decide()
}

// evaluation is one run of Evaluate.
type evaluation struct {
	l    Ladder
	req  Request
	acct Account
	win  window
	// verifs are the valid verifications the request may use.
	verifs []Verification
	// avail are the second factors the user can verify now, one entry per
	// factor, in defaultOrder.
	avail []Enrollment
	// enroll: the flow may offer to enroll a factor.
	enroll bool
}

func newEvaluation(l Ladder, req Request, verifs []Verification, acct Account, now time.Time) *evaluation {
	start := req.Start
	if start.IsZero() {
		start = now
	}
	w := window{now: now}
	if req.MaxAge != nil {
		w.cutoff, w.hasCutoff = start.Add(-*req.MaxAge), true
	}
	// prompt=login is max_age=0 (OIDC Core 3.1.2.1); keep the later cutoff
	// when both are given.
	if req.PromptLogin && (!w.hasCutoff || start.After(w.cutoff)) {
		w.cutoff, w.hasCutoff = start, true
	}
	if req.HintOtherSubject {
		// The session belongs to someone else than the RP expects.
		verifs = nil
	}
	policy := req.Unenrolled
	if policy == "" {
		policy = AllowSkip
	}
	e := &evaluation{
		l:      l,
		req:    req,
		acct:   acct,
		win:    w,
		verifs: w.valid(verifs),
		avail:  availableFactors(acct, policy),
		// Enrolling needs a page, and a cancelled flow has declined it; under
		// email_fallback the email code stands in for enrolling.
		enroll: !req.PromptNone && !req.Cancelled && !(policy == EmailFallback && acct.HasEmail),
	}
	e.req.Unenrolled = policy
	return e
}

// availableFactors merges the account's enrollments into one entry per
// second factor, in defaultOrder. A WebAuthn entry has UV when some
// credential performs user verification and Hardware when some such
// credential is also trusted as hardware, which is what phr and phrh need.
func availableFactors(acct Account, policy Unenrolled) []Enrollment {
	var out []Enrollment
	for _, f := range defaultOrder {
		found := false
		merged := Enrollment{Factor: f}
		for _, en := range acct.Enrolled {
			if en.Factor != f {
				continue
			}
			found = true
			if f == WebAuthn && en.UV {
				merged.UV = true
				merged.Hardware = merged.Hardware || en.Hardware
			}
		}
		if !found && f == Email && policy == EmailFallback && acct.HasEmail {
			found = true
		}
		if found {
			out = append(out, merged)
		}
	}
	return out
}

func (e *evaluation) decide() Decision {
	if len(e.l) == 0 {
		return fail(ErrUnmetRequirements, "no authentication level is configured")
	}

	// The floor and mfa.login: always are essential (PRODUCT.md §3); both
	// are configuration, so a value the ladder does not know fails closed.
	essMin, needMF := -1, false
	if acr := e.req.ClientMinACR; acr != "" {
		if essMin = e.l.Rank(acr); essMin < 0 {
			return fail(ErrUnmetRequirements, fmt.Sprintf("client min_acr %q is not a configured level", acr))
		}
	}
	if e.req.MFAAlways {
		mf := e.l.lowestMultiFactor()
		if mf < 0 {
			return fail(ErrUnmetRequirements, "mfa.login is always but no level is multi-factor")
		}
		essMin, needMF = max(essMin, mf), true
	}

	var known []int
	for _, acr := range e.req.ACRValues {
		if i := e.l.Rank(acr); i >= 0 {
			known = append(known, i)
		}
	}
	// Unknown values are ignored when voluntary (OIDC Core 3.1.2.1); an
	// essential request for only unknown values cannot be met (OIDC Core
	// 5.5.1.1).
	if e.req.Essential && len(e.req.ACRValues) > 0 && len(known) == 0 {
		return fail(ErrUnmetRequirements, "none of the essential acr values is supported")
	}

	usable := e.usable()
	switch {
	case !usable && e.req.PromptNone:
		return fail(ErrLoginRequired, "no usable session")
	case !usable && e.req.Cancelled:
		return fail(ErrAccessDenied, "the user cancelled the login")
	case !usable && !e.acct.HasPassword && len(e.avail) == 0:
		return Decision{Outcome: Need, Need: []Factor{Password}}
	case e.req.Cancelled:
		return e.cancelled(known, essMin, needMF)
	}

	// The requested level: the most preferred one reachable with what the
	// user has; only when none is, the most preferred one reachable by
	// enrolling (PRODUCT.md §3 (b)).
	reqRank := e.firstReachable(known, false)
	if reqRank < 0 && e.enroll {
		reqRank = e.firstReachable(known, true)
	}
	if reqRank < 0 && e.req.Essential && len(known) > 0 {
		return fail(ErrUnmetRequirements, "no essential acr value can be reached")
	}

	target, essential := "", false
	rank := max(essMin, reqRank)
	switch {
	case rank < 0:
		// Nothing is required: any session will do, which still means the
		// lowest level (a custom ladder may start above one factor).
		rank = 0
	case rank == essMin:
		target, essential = e.l[rank].ACR, true
	default:
		target, essential = e.l[rank].ACR, e.req.Essential
	}
	withTarget := func(d Decision) Decision {
		d.Target, d.Essential = target, essential
		return d
	}

	if satisfies(e.counted(rank), e.l[rank]) {
		return withTarget(e.issue(known, essMin, needMF))
	}
	steps, ok := e.plan(rank, e.enroll)
	if !ok {
		return withTarget(fail(ErrUnmetRequirements, fmt.Sprintf("level %q cannot be reached", e.l[rank].ACR)))
	}
	if e.req.PromptNone {
		// plan ran without enrolling, so the level is reachable with the
		// factors the user already has: a page would be needed
		// (OIDC Core 3.1.2.6).
		return withTarget(fail(ErrInteractionRequired, fmt.Sprintf("level %q needs user interaction", e.l[rank].ACR)))
	}
	return withTarget(e.pageFor(steps))
}

// firstReachable returns the first of ranks that can be reached (see
// plan), or -1.
func (e *evaluation) firstReachable(ranks []int, allowEnroll bool) int {
	for _, i := range ranks {
		if _, ok := e.plan(i, allowEnroll); ok {
			return i
		}
	}
	return -1
}

// usable reports whether some verification counts for some level: the
// session still authenticates someone for this request.
func (e *evaluation) usable() bool {
	for _, v := range e.verifs {
		for _, lv := range e.l {
			if e.win.counts(v, lv) {
				return true
			}
		}
	}
	return false
}

// cancelled completes a flow the user cancelled with what has been reached
// (PRODUCT.md §3): voluntary values are dropped, essential ones must hold.
func (e *evaluation) cancelled(known []int, essMin int, needMF bool) Decision {
	if e.req.Essential && len(known) > 0 {
		// The RP accepts any of its essential values; one that holds is
		// enough even if a more preferred one was being stepped up to.
		met := false
		for _, i := range known {
			met = met || satisfies(e.counted(i), e.l[i])
		}
		if !met {
			return fail(ErrUnmetRequirements, "the user cancelled an essential step-up")
		}
	}
	d := e.issue(known, essMin, needMF)
	if d.Outcome == Fail && essMin < 0 {
		// Nothing essential was asked and nothing at all is satisfied: the
		// user cancelled what amounts to the login.
		return fail(ErrAccessDenied, "the user cancelled the login")
	}
	return d
}

// issue builds the OK decision (PRODUCT.md §3): the acr is the first
// requested value the session satisfies, else the highest level it
// satisfies, raised to the lowest satisfied level at or above essMin (and
// multi-factor under needMF). It fails closed when no level qualifies.
func (e *evaluation) issue(known []int, essMin int, needMF bool) Decision {
	sat := make([]bool, len(e.l))
	for i, lv := range e.l {
		sat[i] = satisfies(e.counted(i), lv)
	}
	qualifies := func(i int) bool {
		return i >= 0 && sat[i] && i >= essMin && (!needMF || e.l[i].MultiFactor())
	}
	pick := -1
	for _, i := range known {
		if sat[i] {
			pick = i
			break
		}
	}
	if pick < 0 {
		for i := len(e.l) - 1; i >= 0; i-- {
			if sat[i] {
				pick = i
				break
			}
		}
	}
	if !qualifies(pick) {
		pick = -1
		for i := range e.l {
			if qualifies(i) {
				pick = i
				break
			}
		}
	}
	if pick < 0 {
		return fail(ErrUnmetRequirements, "the session does not satisfy the required level")
	}

	lv := e.l[pick]
	d := Decision{Outcome: OK, ACR: lv.ACR}
	seen := map[string]bool{}
	for _, v := range e.counted(pick) {
		for _, m := range AMR(v) {
			if !seen[m] {
				seen[m] = true
				d.AMR = append(d.AMR, m)
			}
		}
		if v.At.After(d.AuthTime) {
			d.AuthTime = v.At
		}
	}
	// RFC 8176 "mfa" describes the level, not the list: a 1fa level never
	// carries it even when more factors were verified.
	if lv.MultiFactor() {
		d.AMR = append(d.AMR, "mfa")
	}
	return d
}

// counted returns the verifications that count for level i in this
// request.
func (e *evaluation) counted(i int) []Verification {
	return e.win.counted(e.verifs, e.l[i])
}

// step is one page of a plan: verify (or, with enroll, enroll) factor.
// alts are the other factors that would fill the same step.
type step struct {
	factor Factor
	enroll bool
	alts   []Factor
}

// plan returns the factors to verify, in order, to reach level i from the
// verifications that count for it, and whether that is possible at all
// (allowEnroll: also by enrolling a factor from acct.Enrollable).
//
// With nothing fresh the password comes first: the login page is where a
// user is identified. Otherwise a fresh password is never asked again and
// the user's default second factor fills a missing category; the password
// fills knowledge only when no second factor can add a category.
func (e *evaluation) plan(i int, allowEnroll bool) ([]step, bool) {
	lv := e.l[i]
	fresh := e.counted(i)
	ev := evidenceOf(fresh)
	cats := ev.cats

	var steps []step
	if len(fresh) == 0 && e.acct.HasPassword {
		steps = append(steps, step{factor: Password})
		cats |= knowledge
	}

	if (lv.PhishingResistant && !ev.pr) || (lv.Hardware && !ev.hw) {
		suits := func(en Enrollment) bool {
			return en.Factor == WebAuthn && en.UV && (en.Hardware || !lv.Hardware)
		}
		switch {
		case e.has(suits):
			steps = append(steps, e.secondFactor(suits))
		case allowEnroll && !lv.Hardware && e.canEnroll(WebAuthn):
			// A new passkey is assumed to verify the user (the flow asks for
			// an assertion right after registering, and Evaluate runs again).
			// Whether it will be trusted as hardware cannot be known before
			// its attestation, so phrh is never planned through enrolling.
			steps = append(steps, step{factor: WebAuthn, enroll: true})
		default:
			return nil, false
		}
		cats |= possession | inherence
	}

	for cats.count() < max(lv.Factors, 1) {
		missing := (knowledge | possession | inherence) &^ cats
		adds := func(en Enrollment) bool { return categories(en.Factor, en.UV)&missing != 0 }
		switch {
		case e.has(adds):
			s := e.secondFactor(adds)
			steps = append(steps, s)
			cats |= categories(s.factor, e.enrollment(s.factor).UV)
		case missing&knowledge != 0 && e.acct.HasPassword:
			steps = append(steps, step{factor: Password})
			cats |= knowledge
		default:
			f, ok := e.enrollable(missing, allowEnroll)
			if !ok {
				return nil, false
			}
			steps = append(steps, step{factor: f, enroll: true})
			cats |= categories(f, true)
		}
	}
	return e.vouchBeforeEnrolling(fresh, steps), true
}

// vouchBeforeEnrolling puts a verification of one of the user's existing
// second factors before the first enrollment of a plan, unless one is
// already fresh or planned. Enrolling is a change of the account's factors:
// without this, someone who knows only the password of an account with
// TOTP could register their own passkey when a client asks for phr, get
// phr at once and keep a credential that alone is multi-factor. /account
// asks for the same before any change. Users without a second factor
// enroll right after the password, as before.
func (e *evaluation) vouchBeforeEnrolling(fresh []Verification, steps []step) []step {
	first := slices.IndexFunc(steps, func(s step) bool { return s.enroll })
	if first < 0 || len(e.avail) == 0 {
		return steps
	}
	if slices.ContainsFunc(fresh, func(v Verification) bool { return v.Factor != Password }) ||
		slices.ContainsFunc(steps[:first], func(s step) bool { return s.factor != Password }) {
		return steps
	}
	vouch := e.secondFactor(func(Enrollment) bool { return true })
	return slices.Insert(steps, first, vouch)
}

// has reports whether some available second factor passes ok.
func (e *evaluation) has(ok func(Enrollment) bool) bool {
	for _, en := range e.avail {
		if ok(en) {
			return true
		}
	}
	return false
}

// secondFactor picks the user's default factor among those passing ok —
// the one used last, else the first in defaultOrder — and lists the others
// as alternatives (PRODUCT.md §5). ok must pass at least one.
func (e *evaluation) secondFactor(ok func(Enrollment) bool) step {
	var s step
	if en := e.enrollment(e.acct.LastUsed); en.Factor != "" && ok(en) {
		s.factor = en.Factor
	}
	for _, en := range e.avail {
		switch {
		case !ok(en) || en.Factor == s.factor:
		case s.factor == "":
			s.factor = en.Factor
		default:
			s.alts = append(s.alts, en.Factor)
		}
	}
	return s
}

// enrollment returns the available entry for f, or the zero Enrollment.
func (e *evaluation) enrollment(f Factor) Enrollment {
	for _, en := range e.avail {
		if en.Factor == f {
			return en
		}
	}
	return Enrollment{}
}

// canEnroll reports whether the hosted flow can enroll f now.
func (e *evaluation) canEnroll(f Factor) bool {
	for _, g := range e.acct.Enrollable {
		if g == f {
			return true
		}
	}
	return false
}

// enrollable returns the first factor of acct.Enrollable that would add a
// missing category.
func (e *evaluation) enrollable(missing categorySet, allowEnroll bool) (Factor, bool) {
	if !allowEnroll {
		return "", false
	}
	for _, f := range e.acct.Enrollable {
		// A password is not a second factor the flow enrolls.
		if f != Password && categories(f, true)&missing != 0 {
			return f, true
		}
	}
	return "", false
}

// pageFor turns a plan into the page to show: the existing factors that
// come first, or, when the plan starts with enrolling, the enrollment.
func (e *evaluation) pageFor(steps []step) Decision {
	var need []Factor
	for _, s := range steps {
		if s.enroll {
			break
		}
		need = append(need, s.factor)
	}
	if len(need) > 0 {
		return Decision{Outcome: Need, Need: need, Alternatives: steps[0].alts}
	}
	return Decision{
		Outcome:      Enroll,
		EnrollFactor: steps[0].factor,
		Skippable:    e.req.Unenrolled != ForceEnroll,
	}
}

// lowestMultiFactor returns the rank of the lowest multi-factor level, or
// -1 when there is none.
func (l Ladder) lowestMultiFactor() int {
	for i, lv := range l {
		if lv.MultiFactor() {
			return i
		}
	}
	return -1
}

func fail(code, desc string) Decision {
	return Decision{Outcome: Fail, Error: code, Description: desc}
}
