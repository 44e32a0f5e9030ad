package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"tasksync/auth"
)

// FuzzVerify feeds arbitrary strings to a verifier that accepts HS256 and
// one Ed25519 JWKS key. Verify must never panic, every error must be a
// CodeUnauthorized *tasksync.Error, and a success must be a token whose
// signature really is valid for the secret or the published key (checked
// here without the jwt library) and that carries a sane user id.
func FuzzVerify(f *testing.F) {
	ed := newSigner(f, "EdDSA", "ed-1", false)
	srv := newJWKSServer(f, ed.jwk(f))
	v := newVerifier(f, auth.Config{Secret: secret, JWKSURL: srv.URL, Issuer: issuer})

	good := with(claimsFor("user-1"), "iss", issuer)
	hs := signHS256(f, secret, "", good)
	eds := ed.sign(f, good)
	for _, seed := range []string{
		hs, eds,
		signHS256(f, secret, "", with(good, "sub", nil, "id", "user-2")),
		signHS256(f, secret, "", with(good, "exp", t0.Add(-time.Hour).Unix())),
		signHS256(f, secret, "", with(good, "iss", "other")),
		signHS256(f, secret, "", with(good, "sub", nil)),
		signHS256(f, secret, "", with(good, "exp", "4102444800")),
		signHS256(f, secret, "", with(good, "iat", "1")),
		signHS256(f, secret, "", with(good, "sub", "a\x00b")),
		signHS256(f, []byte(strings.Repeat("k", 32)), "", good),
		newSigner(f, "EdDSA", "ed-1", false).sign(f, good),
		newSigner(f, "ES256", "ed-1", false).sign(f, good),
		swapSignature(hs, eds),
		noneToken(f, good),
		hs[:len(hs)-1], eds + "A", strings.ToUpper(eds),
		strings.Replace(hs, ".", "..", 1),
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30",
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.",
		"eyJhbGciOiJFZERTQSIsImtpZCI6W119.e30.AAAA",
	} {
		f.Add(seed)
	}

	pub := ed.pub.(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(context.Background(), raw)
		if err != nil {
			unauthorized(t, err)
			if id != (auth.Identity{}) {
				t.Fatalf("identity %+v with error %v", id, err)
			}
			return
		}
		if id.UserID == "" || len(id.UserID) > auth.MaxUserIDBytes {
			t.Fatalf("accepted user id %q", id.UserID)
		}
		if strings.ContainsFunc(id.UserID, unicode.IsControl) {
			t.Fatalf("accepted user id %q", id.UserID)
		}
		if numericClaimAsString(raw) {
			t.Fatalf("accepted a time claim that is not a JSON number: %q", raw)
		}
		if id.Issuer != issuer {
			t.Fatalf("accepted issuer %q", id.Issuer)
		}
		if !signedByUs(raw, pub) {
			t.Fatalf("accepted a token not signed by the secret or the JWKS key: %q", raw)
		}
	})
}

// numericClaimAsString reports whether the payload of raw has exp, nbf or
// iat of another JSON type than number.
func numericClaimAsString(raw string) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c map[string]any
	if json.Unmarshal(pb, &c) != nil {
		return false
	}
	for _, k := range []string{"exp", "nbf", "iat"} {
		if v, ok := c[k]; ok {
			if _, isNum := v.(float64); !isNum {
				return true
			}
		}
	}
	return false
}

// signedByUs checks the JWS signature of raw independently of the jwt
// library: HMAC-SHA256 with the test secret, or Ed25519 with pub.
func signedByUs(raw string, pub ed25519.PublicKey) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &h) != nil {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	signed := []byte(parts[0] + "." + parts[1])
	switch h.Alg {
	case jwt.SigningMethodHS256.Alg():
		m := hmac.New(sha256.New, secret)
		m.Write(signed)
		return hmac.Equal(sig, m.Sum(nil))
	case jwt.SigningMethodEdDSA.Alg():
		return ed25519.Verify(pub, signed, sig)
	default:
		return false
	}
}
