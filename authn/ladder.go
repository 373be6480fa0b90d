package authn

import (
	"math/bits"
	"time"
)

// The acr values of the default ladder (PRODUCT.md §2), lowest first.
const (
	ACR1FA = "urn:stepup:loa:1fa"
	// ACRMFA is the PAPE multi-factor policy URI, which relying parties
	// already compare against.
	ACRMFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
	// ACRPHR and ACRPHRH are the OpenID EAP ACR values.
	ACRPHR  = "phr"
	ACRPHRH = "phrh"
)

// DefaultLadder returns the ladder used when the configuration gives no
// levels (PRODUCT.md §4). Each call returns a fresh slice, so callers may
// modify it.
func DefaultLadder() Ladder {
	return Ladder{
		{ACR: ACR1FA, Factors: 1},
		{ACR: ACRMFA, Factors: 2, MaxAge: 15 * time.Minute},
		{ACR: ACRPHR, Factors: 1, PhishingResistant: true, MaxAge: 15 * time.Minute},
		{ACR: ACRPHRH, Factors: 1, PhishingResistant: true, Hardware: true, MaxAge: 5 * time.Minute},
	}
}

// Rank returns the position of acr in the ladder (0 is the lowest level),
// or -1 when the ladder does not know it.
func (l Ladder) Rank(acr string) int {
	for i, lv := range l {
		if lv.ACR == acr {
			return i
		}
	}
	return -1
}

// Level returns the level named acr and whether the ladder knows it.
func (l Ladder) Level(acr string) (Level, bool) {
	if i := l.Rank(acr); i >= 0 {
		return l[i], true
	}
	return Level{}, false
}

// AMR returns the RFC 8176 amr values of one verification; nil for a factor
// stepup does not know, so an unknown factor never shows up in a token.
func AMR(v Verification) []string {
	switch v.Factor {
	case Password:
		return []string{"pwd"}
	case TOTP, Email, Recovery:
		return []string{"otp"}
	case SMS:
		return []string{"sms"}
	case WebAuthn:
		return []string{"hwk", "user"}
	}
	return nil
}

// Satisfied returns the acr values that verifs satisfy at now, lowest
// first. Only each level's own max_age applies: there is no request here.
func (l Ladder) Satisfied(verifs []Verification, now time.Time) []string {
	w := window{now: now}
	verifs = w.valid(verifs)
	var acrs []string
	for _, lv := range l {
		if satisfies(w.counted(verifs, lv), lv) {
			acrs = append(acrs, lv.ACR)
		}
	}
	return acrs
}

// categorySet is a set of factor categories (knowledge, possession,
// inherence); a level's Factors counts its members.
type categorySet uint8

const (
	knowledge categorySet = 1 << iota
	possession
	inherence
)

func (s categorySet) count() int { return bits.OnesCount8(uint8(s)) }

// categories returns the categories a verification of f proves. A WebAuthn
// assertion with user verification proves possession of the authenticator
// and the user's PIN or biometric, which is why one passkey is multi-factor
// on its own (PRODUCT.md §2). Unknown factors prove nothing.
func categories(f Factor, uv bool) categorySet {
	switch f {
	case Password:
		return knowledge
	case TOTP, SMS, Email, Recovery:
		return possession
	case WebAuthn:
		if uv {
			return possession | inherence
		}
		return possession
	}
	return 0
}

// knownFactor reports whether stepup knows how to verify f.
func knownFactor(f Factor) bool { return categories(f, false) != 0 }

// evidence is what a set of verifications proves.
type evidence struct {
	cats categorySet
	// pr: a WebAuthn assertion with user verification; hw: one that is
	// also from a trusted hardware authenticator.
	pr, hw bool
}

func evidenceOf(set []Verification) evidence {
	var ev evidence
	for _, v := range set {
		ev.cats |= categories(v.Factor, v.UV)
		if v.Factor == WebAuthn && v.UV {
			ev.pr = true
			ev.hw = ev.hw || v.Hardware
		}
	}
	return ev
}

// meets reports whether the evidence satisfies lv (PRODUCT.md §2).
func (ev evidence) meets(lv Level) bool {
	return ev.cats.count() >= max(lv.Factors, 1) &&
		(!lv.PhishingResistant || ev.pr) &&
		(!lv.Hardware || ev.hw)
}

// satisfies reports whether the verifications in set, all already counting
// for lv, meet its requirement.
func satisfies(set []Verification, lv Level) bool { return evidenceOf(set).meets(lv) }

// window decides which verifications are fresh enough: a level's max_age
// measured from now, and the request's own cutoff (max_age or
// prompt=login) measured from when the request began.
type window struct {
	now       time.Time
	cutoff    time.Time
	hasCutoff bool
}

// valid drops verifications that cannot be trusted to describe what
// happened: unknown factors, a zero time, or a time after now (a clock
// that ran backwards must not yield a future auth_time).
func (w window) valid(verifs []Verification) []Verification {
	var out []Verification
	for _, v := range verifs {
		if knownFactor(v.Factor) && !v.At.IsZero() && !v.At.After(w.now) {
			out = append(out, v)
		}
	}
	return out
}

// counts reports whether v counts for lv. A verification exactly MaxAge
// old still counts; a negative MaxAge (a misconfiguration) counts nothing.
func (w window) counts(v Verification, lv Level) bool {
	if lv.MaxAge != 0 && w.now.Sub(v.At) > lv.MaxAge {
		return false
	}
	return !w.hasCutoff || !v.At.Before(w.cutoff)
}

// counted returns the verifications that count for lv.
func (w window) counted(verifs []Verification, lv Level) []Verification {
	var out []Verification
	for _, v := range verifs {
		if w.counts(v, lv) {
			out = append(out, v)
		}
	}
	return out
}
