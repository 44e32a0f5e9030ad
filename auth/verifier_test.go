package auth_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"tasksync/auth"
)

const issuer = "https://app.example"

// TestVerify runs every kind of token against one verifier that accepts
// both HS256 (shared secret) and JWKS tokens, with issuer and audience set.
func TestVerify(t *testing.T) {
	t.Parallel()
	var (
		ed        = newSigner(t, "EdDSA", "ed-1", false)
		edBare    = newSigner(t, "EdDSA", "ed-bare", true)
		es256     = newSigner(t, "ES256", "es256-1", false)
		es256Bare = newSigner(t, "ES256", "es256-bare", true)
		es384     = newSigner(t, "ES384", "es384-1", false)
		es512     = newSigner(t, "ES512", "es512-1", false)
		rs        = newSigner(t, "RS256", "rsa-1", false)
		ps        = newSigner(t, "PS256", "rsa-2", false)
		rsBare    = newSigner(t, "RS256", "rsa-bare", true)
		edOther   = newSigner(t, "EdDSA", "ed-1", false) // another key claiming ed-1
		edUnknown = newSigner(t, "EdDSA", "not-published", false)
		edEnc     = newSigner(t, "EdDSA", "ed-enc", false)
		edSig     = newSigner(t, "EdDSA", "ed-sig", false)
		octKey    = []byte("a symmetric key someone put in the JWKS!")
	)
	srv := newJWKSServer(t,
		ed.jwk(t), edBare.jwk(t), es256.jwk(t), es256Bare.jwk(t), es384.jwk(t), es512.jwk(t),
		rs.jwk(t), ps.jwk(t), rsBare.jwk(t),
		with2(edEnc.jwk(t), "use", "enc"), with2(edSig.jwk(t), "use", "sig"),
		map[string]any{"kty": "oct", "kid": "oct-1", "alg": "HS256", "k": b64(octKey)},
		map[string]any{"kty": "oct", "kid": "oct-bare", "k": b64(octKey)},
	)
	v := newVerifier(t, auth.Config{Secret: secret, JWKSURL: srv.URL, Issuer: issuer, Audience: issuer})

	good := with(claimsFor("user-1"), "iss", issuer, "aud", issuer)
	rsaDER, err := x509.MarshalPKIXPublicKey(rs.pub)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	// as returns signer s with its key but another kid in the header.
	as := func(s signer, kid string) signer { s.kid = kid; return s }
	raw := func(header, claims string, sig string) string {
		enc := func(s string) string { return b64([]byte(s)) }
		return enc(header) + "." + enc(claims) + "." + sig
	}
	validClaims := fmt.Sprintf(`{"sub":"user-1","iss":%q,"aud":%q,"exp":%d}`, issuer, issuer, t0.Add(time.Minute).Unix())

	tests := []struct {
		name     string
		token    string
		wantUser string // when wantErr is empty
		wantErr  string
	}{
		// Accepted, one per algorithm and key shape.
		{name: "HS256", token: signHS256(t, secret, "", good), wantUser: "user-1"},
		{name: "HS256 with a kid", token: signHS256(t, secret, "ed-1", good), wantUser: "user-1"},
		{name: "EdDSA", token: ed.sign(t, good), wantUser: "user-1"},
		{name: "EdDSA, JWK without alg", token: edBare.sign(t, good), wantUser: "user-1"},
		{name: "ES256", token: es256.sign(t, good), wantUser: "user-1"},
		{name: "ES256, JWK without alg", token: es256Bare.sign(t, good), wantUser: "user-1"},
		{name: "ES512", token: es512.sign(t, good), wantUser: "user-1"},
		{name: "RS256", token: rs.sign(t, good), wantUser: "user-1"},
		{name: "PS256", token: ps.sign(t, good), wantUser: "user-1"},
		{name: "RS256, JWK without alg", token: rsBare.sign(t, good), wantUser: "user-1"},
		{name: "PS256, JWK without alg", token: rsBare.withMethod("PS256").sign(t, good), wantUser: "user-1"},

		// Claims.
		{name: "aud array containing ours", token: ed.sign(t, with(good, "aud", []string{"other", issuer})), wantUser: "user-1"},
		{name: "expired beyond leeway", token: ed.sign(t, with(good, "exp", t0.Add(-31*time.Second).Unix())), wantErr: "token expired"},
		{name: "expired within leeway", token: ed.sign(t, with(good, "exp", t0.Add(-29*time.Second).Unix())), wantUser: "user-1"},
		{name: "nbf beyond leeway", token: ed.sign(t, with(good, "nbf", t0.Add(31*time.Second).Unix())), wantErr: "token not yet valid"},
		{name: "nbf within leeway", token: ed.sign(t, with(good, "nbf", t0.Add(29*time.Second).Unix())), wantUser: "user-1"},
		{name: "no exp", token: ed.sign(t, with(good, "exp", nil)), wantErr: "token has no expiry"},
		// NumericDate is a JSON number (RFC 7519); jwt alone accepts a string holding one.
		{name: "exp as a numeric string", token: ed.sign(t, with(good, "exp", strconv.FormatInt(t0.Add(time.Minute).Unix(), 10))), wantErr: "malformed token"},
		{name: "nbf as a numeric string", token: ed.sign(t, with(good, "nbf", strconv.FormatInt(t0.Unix(), 10))), wantErr: "malformed token"},
		{name: "iat as a numeric string", token: ed.sign(t, with(good, "iat", strconv.FormatInt(t0.Unix(), 10))), wantErr: "malformed token"},
		{name: "iat as a boolean", token: ed.sign(t, with(good, "iat", true)), wantErr: "malformed token"},
		{name: "exp as null", token: ed.sign(t, with(good, "exp", json.RawMessage("null"))), wantErr: "malformed token"},
		{name: "fractional exp", token: ed.sign(t, with(good, "exp", float64(t0.Add(time.Minute).Unix())+0.5)), wantUser: "user-1"},
		{name: "HS256 exp as a numeric string", token: signHS256(t, secret, "", with(good, "exp", strconv.FormatInt(t0.Add(time.Minute).Unix(), 10))), wantErr: "malformed token"},
		{name: "wrong issuer", token: ed.sign(t, with(good, "iss", "https://evil.example")), wantErr: "wrong issuer"},
		{name: "no issuer", token: ed.sign(t, with(good, "iss", nil)), wantErr: "wrong issuer"},
		{name: "wrong audience", token: ed.sign(t, with(good, "aud", "https://evil.example")), wantErr: "wrong audience"},
		{name: "wrong audience array", token: ed.sign(t, with(good, "aud", []string{"a", "b"})), wantErr: "wrong audience"},
		{name: "no audience", token: ed.sign(t, with(good, "aud", nil)), wantErr: "wrong audience"},
		{name: "expired and wrong issuer", token: ed.sign(t, with(good, "exp", t0.Add(-time.Hour).Unix(), "iss", "x")), wantErr: "token expired"},
		{name: "id when no sub", token: ed.sign(t, with(good, "sub", nil, "id", "user-2")), wantUser: "user-2"},
		{name: "sub wins over id", token: ed.sign(t, with(good, "id", "user-2")), wantUser: "user-1"},
		{name: "non-string id next to sub", token: ed.sign(t, with(good, "id", 42)), wantUser: "user-1"},
		{name: "neither sub nor id", token: ed.sign(t, with(good, "sub", nil)), wantErr: "token has no subject"},
		{name: "empty sub and id", token: ed.sign(t, with(good, "sub", "", "id", "")), wantErr: "token has no subject"},
		{name: "non-string id only", token: ed.sign(t, with(good, "sub", nil, "id", 42)), wantErr: "token has no subject"},
		{name: "user id of 256 bytes", token: ed.sign(t, with(good, "sub", strings.Repeat("u", 256))), wantUser: strings.Repeat("u", 256)},
		{name: "user id of 257 bytes", token: ed.sign(t, with(good, "sub", strings.Repeat("u", 257))), wantErr: "token subject too long"},
		{name: "non-string sub", token: ed.sign(t, with(good, "sub", 7)), wantErr: "malformed token"},
		{name: "NUL in sub", token: ed.sign(t, with(good, "sub", "user\x001")), wantErr: "token subject is not a usable user id"},
		{name: "newline in id", token: ed.sign(t, with(good, "sub", nil, "id", "user\n1")), wantErr: "token subject is not a usable user id"},
		{name: "non-ASCII sub", token: ed.sign(t, with(good, "sub", "usér-1")), wantUser: "usér-1"},

		// Signatures and keys.
		{name: "HS256 with another secret", token: signHS256(t, []byte(strings.Repeat("x", 32)), "", good), wantErr: "token signature invalid"},
		{name: "EdDSA by another key with a published kid", token: edOther.sign(t, good), wantErr: "token signature invalid"},
		{name: "unknown kid", token: edUnknown.sign(t, good), wantErr: "unknown signing key"},
		{name: "key for encryption", token: edEnc.sign(t, good), wantErr: "unknown signing key"},
		{name: "key for signatures", token: edSig.sign(t, good), wantUser: "user-1"},
		{name: "no kid", token: as(ed, "").sign(t, good), wantErr: "token has no key id"},
		{name: "kid not a string", token: raw(`{"alg":"EdDSA","kid":5}`, validClaims, "c2ln"), wantErr: "token has no key id"},
		{name: "alg none", token: noneToken(t, good), wantErr: "unsupported token algorithm"},
		{name: "alg none, hand-made", token: raw(`{"alg":"none","kid":"ed-1"}`, validClaims, ""), wantErr: "unsupported token algorithm"},
		{name: "alg None", token: raw(`{"alg":"None"}`, validClaims, ""), wantErr: "unsupported token algorithm"},
		{name: "no alg", token: raw(`{"kid":"ed-1"}`, validClaims, "c2ln"), wantErr: "unsupported token algorithm"},
		{name: "HS512", token: raw(`{"alg":"HS512"}`, validClaims, "c2ln"), wantErr: "unsupported token algorithm"},
		{name: "ES384 token for an ES256 key", token: as(es384, "es256-1").sign(t, good), wantErr: "unsupported token algorithm"},
		{name: "ES384 key published", token: es384.sign(t, good), wantErr: "unsupported token algorithm"},
		{name: "ES512 token for an ES256 key", token: as(es512, "es256-1").sign(t, good), wantErr: "token algorithm does not match its key"},
		{name: "ES512 token for a P-256 key without alg", token: as(es512, "es256-bare").sign(t, good), wantErr: "token algorithm does not match its key"},
		{name: "PS256 token for an RS256 key", token: rs.withMethod("PS256").sign(t, good), wantErr: "token algorithm does not match its key"},
		{name: "RS256 token for an Ed25519 key without alg", token: as(rs, "ed-bare").sign(t, good), wantErr: "token algorithm does not match its key"},
		{name: "EdDSA token for an RSA key without alg", token: as(ed, "rsa-bare").sign(t, good), wantErr: "token algorithm does not match its key"},
		{name: "EdDSA token for an oct key", token: as(ed, "oct-1").sign(t, good), wantErr: "token algorithm does not match its key"},
		{name: "ES256 token for an oct key without alg", token: as(es256, "oct-bare").sign(t, good), wantErr: "token algorithm does not match its key"},
		{name: "HS256 signed with the JWKS oct key", token: signHS256(t, octKey, "oct-1", good), wantErr: "token signature invalid"},
		{name: "HS256 signed with the RSA public key PEM", token: signHS256(t, rsaPEM, "rsa-1", good), wantErr: "token signature invalid"},
		{name: "HS256 signed with the RSA public key DER", token: signHS256(t, rsaDER, "rsa-1", good), wantErr: "token signature invalid"},
		{name: "signature of another token", token: swapSignature(ed.sign(t, good), ed.sign(t, with(good, "sub", "user-2"))), wantErr: "token signature invalid"},

		// Not JWTs.
		{name: "empty", token: "", wantErr: "malformed token"},
		{name: "one segment", token: "abc", wantErr: "malformed token"},
		{name: "four segments", token: "a.b.c.d", wantErr: "malformed token"},
		{name: "garbage", token: "...", wantErr: "malformed token"},
		{name: "header not base64", token: "!!!." + b64([]byte(validClaims)) + ".c2ln", wantErr: "malformed token"},
		{name: "header not JSON", token: raw(`{"alg":`, validClaims, "c2ln"), wantErr: "malformed token"},
		{name: "claims not JSON", token: raw(`{"alg":"EdDSA","kid":"ed-1"}`, `[1,2`, "c2ln"), wantErr: "malformed token"},
		{name: "signature not base64", token: raw(`{"alg":"EdDSA","kid":"ed-1"}`, validClaims, "***"), wantErr: "malformed token"},
		{name: "too large", token: ed.sign(t, with(good, "pad", strings.Repeat("p", auth.MaxTokenBytes))), wantErr: "token too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(t.Context(), tt.token)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Verify succeeded with %+v, want %q", id, tt.wantErr)
				}
				if msg := unauthorized(t, err); msg != tt.wantErr {
					t.Fatalf("Verify error %q, want %q", msg, tt.wantErr)
				}
				if id != (auth.Identity{}) {
					t.Errorf("identity %+v returned with an error", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.UserID != tt.wantUser || id.Issuer != issuer {
				t.Errorf("identity %+v, want user %q issuer %q", id, tt.wantUser, issuer)
			}
		})
	}
}

// with2 returns m with k set to v.
func with2(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

func noneToken(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	tok.Header["kid"] = "ed-1"
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// swapSignature returns the header and claims of a with the signature of b.
func swapSignature(a, b string) string {
	return a[:strings.LastIndexByte(a, '.')] + b[strings.LastIndexByte(b, '.'):]
}

// TestVerifyBetterAuthToken checks a token and JWKS shaped exactly like
// those of Better Auth's jwt() plugin (FIELD-NOTES): EdDSA, header alg+kid
// without typ, iss = aud = base URL as a plain string, sub and id, the user
// row, 15-minute exp, no nbf or jti.
func TestVerifyBetterAuthToken(t *testing.T) {
	t.Parallel()
	const base = "http://localhost:3000"
	const kid = "Q2xW9yN3kR7vT1mP5sZ8aB4cD6eF0gH1"
	const user = "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"
	s := newSigner(t, "EdDSA", kid, false)
	pub := s.jwk(t)
	// Better Auth publishes crv, x, kty, alg, kid and nothing else.
	srv := newJWKSServer(t, map[string]any{"crv": pub["crv"], "x": pub["x"], "kty": "OKP", "alg": "EdDSA", "kid": kid})
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL + "/api/auth/jwks", Issuer: base, Audience: base})

	iat := t0.Add(-5 * time.Minute)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iat": iat.Unix(), "exp": iat.Add(15 * time.Minute).Unix(),
		"iss": base, "aud": base, "sub": user, "id": user,
		"name": "Ada", "email": "ada@example.com", "emailVerified": false, "image": nil,
		"createdAt": "2029-12-01T10:00:00.000Z", "updatedAt": "2029-12-01T10:00:00.000Z",
	})
	tok.Header = map[string]any{"alg": "EdDSA", "kid": kid}
	raw, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := auth.Identity{UserID: user, ExpiresAt: time.Unix(iat.Add(15*time.Minute).Unix(), 0), Issuer: base}
	if !id.ExpiresAt.Equal(want.ExpiresAt) || id.UserID != want.UserID || id.Issuer != want.Issuer {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
}

// TestVerifyHS256NeedsTheSecret checks that HS256 is never verified with
// JWKS material, whatever the kid says (HS/RS confusion), and that JWKS
// algorithms are refused when only the secret is configured.
func TestVerifyHS256NeedsTheSecret(t *testing.T) {
	t.Parallel()
	rs := newSigner(t, "RS256", "rsa-1", false)
	ed := newSigner(t, "EdDSA", "ed-1", false)
	octKey := []byte("a symmetric key someone put in the JWKS!")
	srv := newJWKSServer(t, rs.jwk(t), ed.jwk(t), map[string]any{"kty": "oct", "kid": "oct-1", "k": b64(octKey)})
	der, err := x509.MarshalPKIXPublicKey(rs.pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(rs.pub.(*rsa.PublicKey))
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	good := claimsFor("user-1")

	jwksOnly := newVerifier(t, auth.Config{JWKSURL: srv.URL})
	for name, key := range map[string][]byte{"PEM": pemBytes, "DER": der, "PKCS1": pkcs1, "oct": octKey} {
		for _, kid := range []string{"rsa-1", "oct-1", ""} {
			_, err := jwksOnly.Verify(t.Context(), signHS256(t, key, kid, good))
			if msg := unauthorized(t, err); msg != "unsupported token algorithm" {
				t.Errorf("HS256 with %s as secret, kid %q: %q, want unsupported token algorithm", name, kid, msg)
			}
		}
	}
	if _, err := jwksOnly.Verify(t.Context(), rs.sign(t, good)); err != nil {
		t.Errorf("RS256 on the JWKS-only verifier: %v", err)
	}

	secretOnly := newVerifier(t, auth.Config{Secret: secret})
	for _, tok := range []string{rs.sign(t, good), ed.sign(t, good)} {
		_, err := secretOnly.Verify(t.Context(), tok)
		if msg := unauthorized(t, err); msg != "unsupported token algorithm" {
			t.Errorf("JWKS token on the secret-only verifier: %q, want unsupported token algorithm", msg)
		}
	}
}

// TestVerifyIdentityWithoutIssuerCheck checks the identity fields when no
// issuer or audience is required: any iss is accepted and reported.
func TestVerifyIdentityWithoutIssuerCheck(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: secret})
	exp := t0.Add(time.Hour)
	id, err := v.Verify(t.Context(), signHS256(t, secret, "", jwt.MapClaims{"sub": "u", "exp": exp.Unix(), "iss": "anyone", "aud": 5.0}))
	if err == nil {
		t.Fatalf("a numeric aud was accepted: %+v", id)
	}
	id, err = v.Verify(t.Context(), signHS256(t, secret, "", jwt.MapClaims{"sub": "u", "exp": exp.Unix(), "iss": "anyone", "aud": "whatever"}))
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "u" || id.Issuer != "anyone" || !id.ExpiresAt.Equal(exp) {
		t.Fatalf("identity %+v", id)
	}
}

func TestVerifyLeeway(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: secret, Leeway: 2 * time.Minute})
	for _, c := range []struct {
		exp     time.Duration
		wantErr bool
	}{{-90 * time.Second, false}, {-121 * time.Second, true}} {
		_, err := v.Verify(t.Context(), signHS256(t, secret, "", jwt.MapClaims{"sub": "u", "exp": t0.Add(c.exp).Unix()}))
		if (err != nil) != c.wantErr {
			t.Errorf("exp now%v with 2m leeway: err %v, want error %v", c.exp, err, c.wantErr)
		}
	}
}

// TestVerifyKeyRotation: the identity provider switches to a new key; its
// tokens verify without a restart after one refetch, the old key stops
// working, and a burst of tokens with made-up kids causes no refetch.
func TestVerifyKeyRotation(t *testing.T) {
	t.Parallel()
	old := newSigner(t, "EdDSA", "kid-old", false)
	srv := newJWKSServer(t, old.jwk(t))
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, MinRefreshInterval: time.Hour})
	wantHits := func(want int64) {
		t.Helper()
		if got := srv.hits.Load(); got != want {
			t.Fatalf("JWKS fetched %d times, want %d", got, want)
		}
	}
	wantHits(1) // NewVerifier's first fetch
	if _, err := v.Verify(t.Context(), old.sign(t, claimsFor("u"))); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	wantHits(1) // cached

	cur := newSigner(t, "EdDSA", "kid-new", false)
	srv.publish(t, cur.jwk(t))
	if id, err := v.Verify(t.Context(), cur.sign(t, claimsFor("u"))); err != nil || id.UserID != "u" {
		t.Fatalf("new key after rotation: %+v, %v", id, err)
	}
	wantHits(2) // one refetch for the unknown kid

	// Many tokens with unknown kids, concurrently: all rejected, no refetch.
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := newSigner(t, "EdDSA", fmt.Sprintf("made-up-%d", i), false)
		tok := s.sign(t, claimsFor("u"))
		wg.Go(func() {
			_, err := v.Verify(t.Context(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Fatal("a token with an unknown kid was accepted")
		}
		if msg := unauthorized(t, err); msg != "unknown signing key" {
			t.Fatalf("unknown kid: %q", msg)
		}
	}
	wantHits(2)

	// The refetch replaced the cache: the old key is gone.
	_, err := v.Verify(t.Context(), old.sign(t, claimsFor("u")))
	if msg := unauthorized(t, err); msg != "unknown signing key" {
		t.Fatalf("old key after rotation: %q", msg)
	}
	// Keys already cached keep working while refetches are rate limited.
	if _, err := v.Verify(t.Context(), cur.sign(t, claimsFor("u"))); err != nil {
		t.Fatalf("current key: %v", err)
	}
	wantHits(2)
}

// TestVerifyRotationAfterMinInterval: with a short MinRefreshInterval, two
// rotations in a row are both picked up.
func TestVerifyRotationAfterMinInterval(t *testing.T) {
	t.Parallel()
	first := newSigner(t, "ES256", "k1", false)
	srv := newJWKSServer(t, first.jwk(t))
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, MinRefreshInterval: 20 * time.Millisecond})
	for i, kid := range []string{"k2", "k3"} {
		next := newSigner(t, "ES256", kid, false)
		srv.publish(t, next.jwk(t))
		if _, err := v.Verify(t.Context(), next.sign(t, claimsFor("u"))); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", got)
	}
}

// TestVerifyBackgroundRefresh: the JWKS is refetched on RefreshInterval
// without any token, so a removed key stops working even though its kid is
// known.
func TestVerifyBackgroundRefresh(t *testing.T) {
	t.Parallel()
	old := newSigner(t, "EdDSA", "kid-old", false)
	srv := newJWKSServer(t, old.jwk(t))
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, RefreshInterval: 5 * time.Millisecond})
	tok := old.sign(t, claimsFor("u"))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	srv.publish(t, newSigner(t, "EdDSA", "kid-new", false).jwk(t))
	// The old kid stays cached until a background fetch replaces the set:
	// only then does it become unknown (and its unknown-kid refetch finds
	// nothing either).
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	var err error
	for err == nil {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the removed key still verifies after 10s")
		}
		_, err = v.Verify(t.Context(), tok)
	}
	if hits := srv.hits.Load(); hits < 2 {
		t.Fatalf("JWKS fetched %d times", hits)
	}
	if msg := unauthorized(t, err); msg != "unknown signing key" {
		t.Fatalf("removed key: %q", msg)
	}
}

// TestNewVerifierJWKSDown: the service starts while the JWKS is down; the
// failure is logged, and the first token fetches the keys.
func TestNewVerifierJWKSDown(t *testing.T) {
	t.Parallel()
	s := newSigner(t, "EdDSA", "k", false)
	srv := newJWKSServer(t, s.jwk(t))
	srv.down.Store(true)
	var logs syncBuffer
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "jwks fetch failed") {
		t.Fatalf("no log of the failed fetch; logs:\n%s", logs.String())
	}
	srv.down.Store(false)
	tok := s.sign(t, claimsFor("u"))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify after the JWKS came up: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", got)
	}

	// Unreachable address: NewVerifier still succeeds.
	srv.Close()
	if _, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: srv.URL, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatalf("NewVerifier with an unreachable JWKS: %v", err)
	}
}

// TestVerifyLogsNoToken: a rejection is logged at debug level with its
// reason, and the token appears nowhere.
func TestVerifyLogsNoToken(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	ctx := reqlogContext(t.Context(), &logs)
	v := newVerifier(t, auth.Config{Secret: secret})
	tok := signHS256(t, secret, "", jwt.MapClaims{"sub": "u", "exp": t0.Add(-time.Hour).Unix()})
	_, err := v.Verify(ctx, tok)
	if msg := unauthorized(t, err); msg != "token expired" {
		t.Fatalf("got %q", msg)
	}
	if !strings.Contains(logs.String(), "token expired") {
		t.Errorf("rejection not logged; logs:\n%s", logs.String())
	}
	assertNoToken(t, logs.String(), tok)
	assertNoToken(t, err.Error(), tok)
}

// assertNoToken fails if s contains tok or any of its three parts.
func assertNoToken(t *testing.T, s, tok string) {
	t.Helper()
	for _, part := range append(strings.Split(tok, "."), tok) {
		if len(part) > 8 && strings.Contains(s, part) {
			t.Fatalf("the token leaked into %q", s)
		}
	}
}

func TestNewVerifierConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     auth.Config
		wantErr string // substring; empty for success
	}{
		{name: "nothing", cfg: auth.Config{}, wantErr: "neither a secret"},
		{name: "short secret", cfg: auth.Config{Secret: []byte("short")}, wantErr: "at least 32"},
		{name: "31-byte secret", cfg: auth.Config{Secret: bytes.Repeat([]byte("s"), 31)}, wantErr: "at least 32"},
		{name: "32-byte secret", cfg: auth.Config{Secret: bytes.Repeat([]byte("s"), 32)}},
		{name: "relative JWKS URL", cfg: auth.Config{JWKSURL: "/api/auth/jwks"}, wantErr: "not an absolute"},
		{name: "JWKS URL with another scheme", cfg: auth.Config{JWKSURL: "ftp://idp/jwks"}, wantErr: "not an absolute"},
		{name: "negative leeway", cfg: auth.Config{Secret: secret, Leeway: -time.Second}, wantErr: "negative"},
		{name: "negative refresh interval", cfg: auth.Config{Secret: secret, MinRefreshInterval: -time.Second}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewVerifier(t.Context(), tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("NewVerifier: %v", err)
			case tt.wantErr == "" && v == nil:
				t.Fatal("NewVerifier returned nil without an error")
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("NewVerifier error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestVerifierCopiesSecret: changing the caller's slice later changes
// nothing.
func TestVerifierCopiesSecret(t *testing.T) {
	t.Parallel()
	s := bytes.Clone(secret)
	v := newVerifier(t, auth.Config{Secret: s})
	tok := signHS256(t, secret, "", claimsFor("u"))
	s[0] ^= 0xff
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer that a logger in another goroutine may
// write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestVerifyAfterContextEnd: cancelling NewVerifier's ctx ends the
// background refresh only; cached keys and unknown-kid refetches (which run
// in the caller's ctx) keep working.
func TestVerifyAfterContextEnd(t *testing.T) {
	t.Parallel()
	first := newSigner(t, "EdDSA", "k1", false)
	srv := newJWKSServer(t, first.jwk(t))
	ctx, cancel := context.WithCancel(t.Context())
	v, err := auth.NewVerifier(ctx, auth.Config{JWKSURL: srv.URL, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := v.Verify(t.Context(), first.sign(t, claimsFor("u"))); err != nil {
		t.Fatalf("cached key: %v", err)
	}
	next := newSigner(t, "EdDSA", "k2", false)
	srv.publish(t, next.jwk(t))
	if _, err := v.Verify(t.Context(), next.sign(t, claimsFor("u"))); err != nil {
		t.Fatalf("new key after the ctx ended: %v", err)
	}
}
