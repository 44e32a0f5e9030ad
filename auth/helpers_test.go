package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"tasksync"
	"tasksync/auth"
)

// t0 is "now" for every verifier built by newVerifier, so that tokens
// signed with fixed times stay valid (and seeds of the fuzz corpus too).
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// secret is the HS256 shared secret of the tests.
var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// RSA keys are slow to generate (more so under -race): two are shared.
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var ks [2]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// signer is a test key: its private half signs tokens, its public half is
// published in the test JWKS.
type signer struct {
	kid    string
	method jwt.SigningMethod
	priv   any
	pub    any
	jwkAlg string // the JWK's "alg"; empty to publish the key without one
}

// newSigner makes a key for alg ("EdDSA", "ES256", "ES384", "ES512",
// "RS256", "PS256"); the JWK publishes alg unless bare is set.
func newSigner(t testing.TB, alg, kid string, bare bool) signer {
	t.Helper()
	s := signer{kid: kid, method: jwt.GetSigningMethod(alg)}
	if !bare {
		s.jwkAlg = alg
	}
	var err error
	switch alg {
	case "EdDSA":
		s.pub, s.priv, err = ed25519.GenerateKey(rand.Reader)
	case "ES256", "ES384", "ES512":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		var k *ecdsa.PrivateKey
		k, err = ecdsa.GenerateKey(curve, rand.Reader)
		if k != nil {
			s.priv, s.pub = k, &k.PublicKey
		}
	case "RS256", "PS256":
		k := rsaKeys()[0]
		if kid == "rsa-2" {
			k = rsaKeys()[1]
		}
		s.priv, s.pub = k, &k.PublicKey
	default:
		t.Fatalf("newSigner: no key type for %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withMethod returns a copy of s that signs with another algorithm (same
// key, same kid): for algorithm-confusion tests.
func (s signer) withMethod(alg string) signer {
	s.method = jwt.GetSigningMethod(alg)
	return s
}

var b64 = base64.RawURLEncoding.EncodeToString

// jwk returns the public JWK of s, written by hand the way identity
// providers publish them.
func (s signer) jwk(t testing.TB) map[string]any {
	t.Helper()
	m := map[string]any{"kid": s.kid}
	if s.jwkAlg != "" {
		m["alg"] = s.jwkAlg
	}
	switch pub := s.pub.(type) {
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		n := (len(raw) - 1) / 2
		m["kty"], m["crv"] = "EC", pub.Curve.Params().Name
		m["x"], m["y"] = b64(raw[1:1+n]), b64(raw[1+n:])
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	default:
		t.Fatalf("jwk: unexpected key %T", s.pub)
	}
	return m
}

// sign signs claims with s, with s.kid in the header when non-empty.
func (s signer) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, claims)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	raw, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// signHS256 signs claims with key as the HMAC secret, with kid in the
// header when non-empty.
func signHS256(t testing.TB, key []byte, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// claimsFor returns valid claims for user at t0: sub, iat and a 15-minute
// exp, like Better Auth.
func claimsFor(user string) jwt.MapClaims {
	return jwt.MapClaims{"sub": user, "iat": t0.Unix(), "exp": t0.Add(15 * time.Minute).Unix()}
}

// with returns a copy of c with kv applied; a nil value deletes the claim.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// jwksServer serves a JWKS that a test can swap, and counts fetches.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64
	down atomic.Bool // answer 503
	body atomic.Pointer[[]byte]
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.publish(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

// publish replaces the served key set.
func (s *jwksServer) publish(t testing.TB, keys ...map[string]any) {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&b)
}

// newVerifier builds a verifier whose clock is t0 and whose refresh ends
// with the test. MinRefreshInterval defaults to an hour here so that
// nothing but the first unknown kid refetches unless a test says so.
func newVerifier(t testing.TB, cfg auth.Config) *auth.Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = time.Hour
	}
	v, err := auth.NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// unauthorized returns the message of err if it is a CodeUnauthorized
// *tasksync.Error, and fails the test otherwise.
func unauthorized(t testing.TB, err error) string {
	t.Helper()
	var e *tasksync.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *tasksync.Error", err, err)
	}
	if e.Code != tasksync.CodeUnauthorized {
		t.Fatalf("error code %q, want %q", e.Code, tasksync.CodeUnauthorized)
	}
	return e.Message
}
