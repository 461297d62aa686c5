// Package devices is the lifecycle of devices and their bearer tokens: creating,
// listing, removing them and their tokens in the database (the `sungrow device` and
// `sungrow token` commands), and the Registry serve authenticates every request with,
// which keeps the table's tokens and DEVICE_TOKENS in memory and follows the table's
// changes within seconds on every instance.
package devices

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// TokenPrefix starts every token the table issues, so a leaked one is easy to spot in
// a repository scan or a paste.
const TokenPrefix = "sg_"

// tokenBytes is the entropy of a token: 256 bits from crypto/rand.
const tokenBytes = 32

// Scope is what a token may do with its device.
type Scope string

const (
	// ReadWrite may post samples and read: the edge's token, every DEVICE_TOKENS entry.
	ReadWrite Scope = "read-write"
	// ReadOnly may read everything of its device and write nothing: for a dashboard on
	// a phone or a wall tablet, where a leaked token must not let anyone post samples.
	ReadOnly Scope = "read-only"
)

func scopeOf(readOnly bool) Scope {
	if readOnly {
		return ReadOnly
	}
	return ReadWrite
}

// Grant is what a token authenticates as: its device and its scope.
type Grant struct {
	Device string
	Scope  Scope
}

// Hash is what the database and the registry hold of a token: its SHA-256.
type Hash = [sha256.Size]byte

// HashToken returns the SHA-256 of a token.
func HashToken(token string) Hash {
	return sha256.Sum256([]byte(token))
}

// NewToken returns a fresh token (sg_ and 43 URL-safe base64 characters) and its hash.
func NewToken() (string, Hash, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Hash{}, fmt.Errorf("generate token: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}
