package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// KeyPrefix starts every virtual key, so a leaked one is recognisable (and
// secret scanners can be taught it).
const KeyPrefix = "tg-"

// displayLen is how much of a key is kept for display: the prefix and seven
// characters, about 42 bits — enough to tell keys apart, far too little to
// guess the other 256.
const displayLen = len(KeyPrefix) + 7

// NewSecret returns a fresh key: "tg-" and 32 random bytes in URL-safe
// base64 (43 characters, 256 bits).
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is what is stored of a secret. A fast hash is right here: the secret
// has 256 random bits, so there is nothing to brute-force, and it runs on
// every request.
func Hash(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// Prefix is the displayable start of a secret.
func Prefix(secret string) string {
	if len(secret) <= displayLen {
		return secret
	}
	return secret[:displayLen] + "…"
}

// LooksLikeKey reports whether s has the shape of a virtual key, so the
// master key and garbage are told apart before any lookup.
func LooksLikeKey(s string) bool {
	return strings.HasPrefix(s, KeyPrefix) && len(s) == len(KeyPrefix)+43
}

// newID returns prefix + 20 hex digits of randomness: public, stable ids.
func newID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
