package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IssueHS256 mints an HS256 token for userID that a [Verifier] with the same
// secret accepts: claims sub and id (both userID, like Better Auth), iat,
// exp = now + ttl, and iss and aud (a plain string) when non-empty. It is
// meant for development, tests and the `token` sub-command; production
// tokens come from the identity provider.
func IssueHS256(secret []byte, userID string, ttl time.Duration, issuer, audience string) (string, error) {
	switch {
	case len(secret) < MinSecretBytes:
		return "", fmt.Errorf("issue token: the secret is %d bytes; at least %d are required", len(secret), MinSecretBytes)
	case userID == "":
		return "", errors.New("issue token: empty user id")
	case len(userID) > MaxUserIDBytes:
		return "", fmt.Errorf("issue token: user id longer than %d bytes", MaxUserIDBytes)
	case ttl <= 0:
		return "", fmt.Errorf("issue token: ttl %v is not positive", ttl)
	}
	now := time.Now()
	c := jwt.MapClaims{
		"sub": userID,
		"id":  userID,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if issuer != "" {
		c["iss"] = issuer
	}
	if audience != "" {
		c["aud"] = audience
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return s, nil
}
