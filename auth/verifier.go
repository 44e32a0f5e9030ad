package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"tasksync"
	"tasksync/internal/reqlog"
)

// Defaults and limits of a [Verifier].
const (
	// DefaultLeeway is the clock skew allowed on exp and nbf when
	// Config.Leeway is 0.
	DefaultLeeway = 30 * time.Second
	// DefaultHTTPTimeout bounds one JWKS fetch when Config.HTTPClient is nil
	// or has no Timeout of its own.
	DefaultHTTPTimeout = 10 * time.Second
	// DefaultRefreshInterval is how often the JWKS is refetched in the
	// background when Config.RefreshInterval is 0. Rotation does not depend
	// on it (an unknown kid triggers a refetch); it bounds how long a key
	// removed from the JWKS keeps being accepted.
	DefaultRefreshInterval = time.Hour
	// DefaultMinRefreshInterval is the minimum time between two refetches
	// caused by unknown kids when Config.MinRefreshInterval is 0.
	DefaultMinRefreshInterval = time.Minute

	// MinSecretBytes is the shortest HS256 secret accepted (RFC 7518 3.2:
	// at least the hash size).
	MinSecretBytes = 32
	// MaxTokenBytes is the longest token Verify looks at. Better Auth tokens
	// carry the whole user row and stay well under 2 KiB.
	MaxTokenBytes = 16 << 10
	// MaxUserIDBytes is the longest user id accepted from sub or id.
	MaxUserIDBytes = 256
)

// Identity is who a verified token says the caller is.
type Identity struct {
	// UserID is the token's sub claim or, when sub is absent, its id claim.
	UserID string
	// ExpiresAt is the token's exp; zero if the token has none (Verifier
	// requires exp, other TokenVerifiers may not).
	ExpiresAt time.Time
	// Issuer is the token's iss claim, possibly empty.
	Issuer string
	// IssuedAt is the token's iat, in whole seconds like the claim; zero if
	// the token has none. [Revocations] compares it with the user's
	// sign-out-everywhere time.
	IssuedAt time.Time
}

// Config configures a [Verifier]. At least one of Secret and JWKSURL must be
// set. Zero values of the other fields mean the documented default.
type Config struct {
	// Secret is the HS256 shared secret (AUTH_JWT_SECRET or
	// BETTER_AUTH_SECRET), at least MinSecretBytes long. Empty disables
	// HS256: such tokens are then rejected whatever their kid says.
	Secret []byte
	// JWKSURL is the JWKS endpoint of the identity provider (Better Auth:
	// {BASE_URL}/api/auth/jwks). Empty disables asymmetric tokens.
	//
	// The algorithm is pinned per key: a JWK with "alg" accepts only that
	// alg; a JWK without it accepts what fits its key type (Ed25519: EdDSA,
	// P-256: ES256, P-521: ES512, RSA: RS256 and PS256). Symmetric ("oct")
	// keys and keys with use other than "sig" are never used, and tokens
	// without a kid are rejected.
	JWKSURL string
	// Issuer, when set, must equal the token's iss (Better Auth: BASE_URL).
	Issuer string
	// Audience, when set, must be the token's aud or one of its entries
	// (Better Auth: BASE_URL).
	Audience string
	// Leeway is the clock skew allowed on exp and nbf; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// HTTPClient fetches the JWKS; nil means a client with a
	// DefaultHTTPTimeout timeout. Its Timeout (or DefaultHTTPTimeout when it
	// has none) also bounds how long a request with an unknown kid may wait
	// for the refetch rate limit and the refetch itself.
	HTTPClient *http.Client
	// RefreshInterval is how often the JWKS is refetched in the background;
	// 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MinRefreshInterval is the minimum time between two refetches caused by
	// tokens with an unknown kid; 0 means DefaultMinRefreshInterval. Such a
	// token is rejected at once when a refetch is not allowed yet, unless
	// the next one is allowed within the HTTP timeout, in which case it
	// waits for it.
	MinRefreshInterval time.Duration
	// Logger receives JWKS fetch failures; nil means the request's logger
	// (reqlog) for refetches caused by a request, and slog.Default()
	// otherwise.
	Logger *slog.Logger
	// Now returns the current time for exp and nbf checks; nil means
	// time.Now. For tests.
	Now func() time.Time
}

// TokenVerifier checks a raw bearer token. [*Verifier] is the
// implementation; the interface lets handlers and tests use another.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (Identity, error)
}

// Verifier checks bearer tokens; see the package documentation for its
// concurrency contract and the lifetime of its JWKS refresh.
type Verifier struct {
	secret   []byte         // nil when HS256 is disabled
	jwks     jwkset.Storage // nil when the JWKS is disabled
	parser   *jwt.Parser    // read-only after NewVerifier
	methods  []string       // accepted algs: HS256 and/or jwksMethods
	issuer   string
	audience string
}

var _ TokenVerifier = (*Verifier)(nil)

// Algorithms accepted from JWKS keys. HS256 is only ever checked against
// Config.Secret.
var jwksMethods = []string{"EdDSA", "ES256", "ES512", "RS256", "PS256"}

// NewVerifier checks cfg and returns a Verifier. With a JWKSURL it fetches
// the JWKS once and starts the background refresh, which runs until ctx is
// cancelled; an unreachable JWKS is logged, not returned, and retried when
// the first token with an unknown kid arrives. An invalid cfg is an error.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("auth config: neither a secret (AUTH_JWT_SECRET) nor a JWKS URL is set")
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("auth config: the secret is %d bytes; at least %d are required", len(cfg.Secret), MinSecretBytes)
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth config: leeway %v is negative", cfg.Leeway)
	}
	if cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 {
		return nil, errors.New("auth config: JWKS refresh intervals must not be negative")
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("auth config: JWKS URL %q is not an absolute http(s) URL", cfg.JWKSURL)
		}
	}
	leeway := orDefault(cfg.Leeway, DefaultLeeway)
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	v := &Verifier{issuer: cfg.Issuer, audience: cfg.Audience}
	if len(cfg.Secret) > 0 {
		v.secret = slices.Clone(cfg.Secret)
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		jwks, err := newJWKS(ctx, cfg)
		if err != nil {
			return nil, err
		}
		v.jwks = jwks
		v.methods = append(v.methods, jwksMethods...)
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		// Better Auth tokens always carry exp; a token without one would be
		// valid forever.
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// newJWKS builds the cached, self-refreshing JWKS storage.
func newJWKS(ctx context.Context, cfg Config) (jwkset.Storage, error) {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	timeout := orDefault(client.Timeout, DefaultHTTPTimeout)
	noErrorOnFirstFetch := true
	logger := cfg.Logger
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               timeout,
		NoErrorReturnFirstHTTPReq: &noErrorOnFirstFetch,
		// Bounds both the wait for the limiter and the refetch itself.
		RateLimitWaitMax:  timeout,
		RefreshInterval:   orDefault(cfg.RefreshInterval, DefaultRefreshInterval),
		RefreshUnknownKID: rate.NewLimiter(rate.Every(orDefault(cfg.MinRefreshInterval, DefaultMinRefreshInterval)), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				l := logger
				if l == nil {
					l = reqlog.Logger(ctx)
				}
				l.WarnContext(ctx, "jwks fetch failed", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth config: JWKS %q: %w", cfg.JWKSURL, err)
	}
	return kf.Storage(), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Causes of a rejection found by this package (the rest come from jwt).
var (
	errTooLarge       = errors.New("token larger than MaxTokenBytes")
	errUnsupportedAlg = errors.New("alg not accepted by this verifier")
	errNoKeyID        = errors.New("token has no kid")
	errUnknownKey     = errors.New("no usable JWKS key for the kid")
	errAlgMismatch    = errors.New("token alg does not fit the key")
	errNoExpiry       = errors.New("token has no exp")
	errNoIssuer       = errors.New("token has no iss")
	errNoAudience     = errors.New("token has no aud")
	errNoSubject      = errors.New("token has neither sub nor id")
	errLongSubject    = errors.New("user id longer than MaxUserIDBytes")
	errBadSubject     = errors.New("user id with control characters")
	errClaimType      = errors.New("time claim of the wrong JSON type")
)

// Verify checks raw and returns the identity it carries. Every error is a
// *tasksync.Error with code CodeUnauthorized and a message safe to show;
// the cause is logged at debug level through reqlog.Logger(ctx).
//
// ctx bounds a JWKS refetch caused by an unknown kid.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	id, err := v.verify(ctx, raw)
	if err != nil {
		e := tasksync.Errorf(tasksync.CodeUnauthorized, "%s", reason(err))
		reqlog.Logger(ctx).DebugContext(ctx, "bearer token rejected", "reason", e.Message, "err", err)
		return Identity{}, e
	}
	return id, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (Identity, error) {
	if len(raw) > MaxTokenBytes {
		return Identity{}, errTooLarge
	}
	c := &claims{wantIssuer: v.issuer != "", wantAudience: v.audience != ""}
	tok, err := v.parser.ParseWithClaims(raw, c, v.keyfunc(ctx))
	if err != nil {
		if tok != nil && (tok.Method == nil || !slices.Contains(v.methods, tok.Method.Alg())) &&
			!errors.Is(err, jwt.ErrTokenMalformed) {
			err = fmt.Errorf("%w: %w", errUnsupportedAlg, err)
		}
		return Identity{}, err
	}
	id := Identity{UserID: c.userID(), Issuer: c.Issuer}
	if c.ExpiresAt != nil {
		id.ExpiresAt = c.ExpiresAt.Time
	}
	if c.IssuedAt != nil {
		id.IssuedAt = c.IssuedAt.Time
	}
	return id, nil
}

// keyfunc returns the key a token must be signed with. HS256 goes only to
// the shared secret and everything else only to the JWKS, so that a public
// key can never be used as an HMAC secret.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		if alg == jwt.SigningMethodHS256.Alg() {
			if v.secret == nil {
				return nil, errUnsupportedAlg
			}
			return v.secret, nil
		}
		if v.jwks == nil {
			return nil, errUnsupportedAlg
		}
		kid, ok := t.Header["kid"].(string)
		if !ok || kid == "" {
			return nil, errNoKeyID
		}
		// KeyRead refetches the JWKS (rate limited) when kid is unknown.
		jwk, err := v.jwks.KeyRead(ctx, kid)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errUnknownKey, err)
		}
		m := jwk.Marshal()
		if m.USE != "" && m.USE != jwkset.UseSig {
			return nil, fmt.Errorf("%w: key use %q", errUnknownKey, m.USE)
		}
		if m.ALG != "" && m.ALG.String() != alg {
			return nil, fmt.Errorf("%w: key alg %q, token alg %q", errAlgMismatch, m.ALG, alg)
		}
		key := jwk.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public() // a JWKS that leaks private keys still verifies
		}
		if !keyFits(key, alg) {
			return nil, fmt.Errorf("%w: %T key, token alg %q", errAlgMismatch, key, alg)
		}
		return key, nil
	}
}

// keyFits reports whether alg is one the key type is pinned to.
func keyFits(key any, alg string) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P521():
			return alg == "ES512"
		}
		return false
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "PS256"
	default: // []byte from an "oct" key, or anything unknown
		return false
	}
}

// reason maps a rejection cause to the message shown to the client. The
// order matters: jwt joins several claim errors into one.
func reason(err error) string {
	switch {
	case errors.Is(err, errTooLarge):
		return "token too large"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, errUnsupportedAlg):
		return "unsupported token algorithm"
	case errors.Is(err, errNoKeyID):
		return "token has no key id"
	case errors.Is(err, errUnknownKey):
		return "unknown signing key"
	case errors.Is(err, errAlgMismatch):
		return "token algorithm does not match its key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not yet valid"
	case errors.Is(err, errNoExpiry):
		return "token has no expiry"
	case errors.Is(err, errNoIssuer), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, errNoAudience), errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, errNoSubject):
		return "token has no subject"
	case errors.Is(err, errLongSubject):
		return "token subject too long"
	case errors.Is(err, errBadSubject):
		return "token subject is not a usable user id"
	default:
		return "invalid token"
	}
}

// claims are the claims Verify reads. Unknown claims (Better Auth's name,
// email, ...) are ignored.
type claims struct {
	jwt.RegisteredClaims
	// UserIDClaim is Better Auth's copy of the user id ("id"). It is
	// decoded as any so that a non-string id cannot make an otherwise good
	// token malformed.
	UserIDClaim any `json:"id,omitempty"`

	wantIssuer, wantAudience bool
}

// UnmarshalJSON decodes the claims after checking that the time claims
// are JSON numbers, as RFC 7519 defines NumericDate: jwt's NumericDate
// also accepts a string holding a number ("exp":"9999999999"), which no
// issuer we trust writes.
func (c *claims) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := raw[name]; ok && !isJSONNumber(v) {
			return fmt.Errorf("%w: %s is not a number", errClaimType, name)
		}
	}
	type plain claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// isJSONNumber reports whether v, a well-formed JSON value, is a number.
func isJSONNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

func (c *claims) userID() string {
	if c.Subject != "" {
		return c.Subject
	}
	s, _ := c.UserIDClaim.(string)
	return s
}

// Validate runs after jwt's own checks (jwt.ClaimsValidator); it gives
// missing claims their own causes, which jwt reports only as "required
// claim missing".
func (c *claims) Validate() error {
	var errs []error
	if c.ExpiresAt == nil {
		errs = append(errs, errNoExpiry)
	}
	if c.wantIssuer && c.Issuer == "" {
		errs = append(errs, errNoIssuer)
	}
	if c.wantAudience && !slices.ContainsFunc(c.Audience, func(a string) bool { return a != "" }) {
		errs = append(errs, errNoAudience)
	}
	switch id := c.userID(); {
	case id == "":
		errs = append(errs, errNoSubject)
	case len(id) > MaxUserIDBytes:
		errs = append(errs, errLongSubject)
	case strings.ContainsFunc(id, unicode.IsControl):
		// A NUL cannot be stored in Postgres text, and control characters
		// in an id that is logged and put in paths are trouble anyway.
		errs = append(errs, errBadSubject)
	}
	return errors.Join(errs...)
}
