package authn

import (
	"slices"
	"time"
)

// DropElevation returns the verifications a session keeps when an
// operator drops its elevation: at most the ladder's lowest level stays
// satisfied. It keeps the password verification when that alone satisfies
// no more than the lowest level; otherwise the latest verification with
// its WebAuthn user-verification and hardware marks taken away (an
// assertion with user verification is at least one with presence); and
// nothing when even that would satisfy more.
func (l Ladder) DropElevation(verifs []Verification, now time.Time) []Verification {
	if len(l) == 0 {
		return nil
	}
	atMostLowest := func(vs []Verification) bool {
		sat := l.Satisfied(vs, now)
		return len(sat) == 0 || (len(sat) == 1 && sat[0] == l[0].ACR)
	}
	var candidates [][]Verification
	if i := slices.IndexFunc(verifs, func(v Verification) bool { return v.Factor == Password }); i >= 0 {
		candidates = append(candidates, []Verification{verifs[i]})
	}
	if len(verifs) > 0 {
		latest := verifs[0]
		for _, v := range verifs[1:] {
			if v.At.After(latest.At) {
				latest = v
			}
		}
		latest.UV, latest.Hardware = false, false
		candidates = append(candidates, []Verification{latest})
	}
	for _, c := range candidates {
		if atMostLowest(c) {
			return c
		}
	}
	return nil
}
