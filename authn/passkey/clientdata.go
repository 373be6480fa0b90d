package passkey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// MaxResponseSize bounds the browser's answer to a ceremony.
const MaxResponseSize = 64 << 10

// ChallengeOf returns the challenge a ceremony response answers, read
// from its clientDataJSON, so that the caller can fetch (and consume) the
// ceremony it belongs to before go-webauthn verifies the response. It
// checks only the shape; everything else is verified by FinishLogin or
// FinishRegistration against the stored ceremony.
func ChallengeOf(body []byte) (string, error) {
	if len(body) > MaxResponseSize {
		return "", errors.New("passkey: response too large")
	}
	var resp struct {
		Response struct {
			ClientDataJSON string `json:"clientDataJSON"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return "", errors.New("passkey: response is not JSON")
	}
	cd, err := decodeB64URL(resp.Response.ClientDataJSON)
	if err != nil || len(cd) == 0 {
		return "", errors.New("passkey: clientDataJSON is not base64url")
	}
	var data struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(cd, &data); err != nil {
		return "", errors.New("passkey: clientDataJSON is not JSON")
	}
	if data.Type != "webauthn.create" && data.Type != "webauthn.get" {
		return "", errors.New("passkey: clientDataJSON has an unknown type")
	}
	// A challenge is base64url of at least 16 bytes; anything else cannot
	// be one we issued and must not become a store key.
	c := data.Challenge
	if len(c) < 22 || len(c) > 128 {
		return "", errors.New("passkey: challenge has a wrong length")
	}
	if _, err := base64.RawURLEncoding.DecodeString(c); err != nil {
		return "", errors.New("passkey: challenge is not base64url")
	}
	return c, nil
}

// decodeB64URL accepts base64url with or without padding (browsers'
// toJSON omits it; some libraries add it).
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
