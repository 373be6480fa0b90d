package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// A code's spent marker (keys.codeGrant) is one byte of format, the
// code's binding in markerBindingLen bytes, and the grant the code is
// exchanged for (issue 18: Redis bytes per login; the marker outlives
// every code by the spent memory). The grant is
//
//   - markerPacked: a grant id and an authorization as the provider makes
//     them ("<24 base64url characters>/<16>"), as their 18 and 12 bytes;
//   - markerText: any other grant reference, as it is.
//
// 44 bytes for the provider's codes, where "<grant> <binding>" took 85:
// at most 44, Redis keeps a string inside its object (an embedded
// string), one allocation of 64 B instead of two (152 B of MEMORY USAGE
// in all, 136 now). The 13 bytes of binding are 104 bits of a SHA-256 of
// client, redirect URI and PKCE challenge; only a replay's verdict rests
// on them (a code still unused is checked against its payload too), and
// a replay with another binding that matches them needs a second
// preimage of 104 bits, computed from a PKCE verifier: 2^104 hashes.
// Markers of the version before (markerPackedV1, markerTextV1: 16 bytes
// of binding) are still read.
const (
	markerPacked     = 'P'
	markerText       = 'T'
	markerPackedV1   = 'p'
	markerTextV1     = 't'
	markerBindingLen = 13
	packedGrantLen   = 18
	packedAuthLen    = 12
)

// markerBindingArg is how many bytes of the binding scriptTakeCode is
// given: the 16 a marker of the version before holds (it compares the
// first markerBindingLen of them with a marker of this version).
const markerBindingArg = 16

var b64 = base64.RawURLEncoding

// markerBinding is a binding as scriptTakeCode is given it: the first
// 128 bits of the SHA-256 the provider's bindings are (base64url of 32
// bytes), or of the SHA-256 of any other binding; a marker holds the
// first markerBindingLen bytes of it. Only the replay of a spent code is
// judged on these bits alone: a code still unused is also checked
// against its payload by the provider.
func markerBinding(binding string) string {
	if raw, err := b64.DecodeString(binding); err == nil && len(raw) == sha256.Size {
		return string(raw[:markerBindingArg])
	}
	sum := sha256.Sum256([]byte(binding))
	return string(sum[:markerBindingArg])
}

// spentMarker is the value of a code's spent marker.
func spentMarker(grantRef, binding string) string {
	g := markerGrant(grantRef)
	return g[:1] + markerBinding(binding)[:markerBindingLen] + g[1:]
}

// markerGrant is the format byte and the grant of a marker.
func markerGrant(ref string) string {
	if id, auth, ok := strings.Cut(ref, "/"); ok && len(id) == 24 && len(auth) == 16 {
		rid, err1 := b64.DecodeString(id)
		rauth, err2 := b64.DecodeString(auth)
		if err1 == nil && err2 == nil && b64.EncodeToString(rid) == id && b64.EncodeToString(rauth) == auth {
			return string(markerPacked) + string(rid) + string(rauth)
		}
	}
	return string(markerText) + ref
}

// errMarker is a spent marker this version cannot read: the code is
// refused (failing closed), never taken.
var errMarker = errors.New("unreadable spent marker")

// markerGrantRef reads the grant of a marker from its format byte and
// grant, as scriptTakeCode returns them.
func markerGrantRef(v string) (string, error) {
	if v == "" {
		return "", errMarker
	}
	switch rest := v[1:]; v[0] {
	case markerPacked, markerPackedV1:
		if len(rest) != packedGrantLen+packedAuthLen {
			return "", errMarker
		}
		return b64.EncodeToString([]byte(rest[:packedGrantLen])) + "/" + b64.EncodeToString([]byte(rest[packedGrantLen:])), nil
	case markerText, markerTextV1:
		return rest, nil
	}
	return "", errMarker
}
