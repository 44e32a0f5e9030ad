package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"tasksync/auth"
)

func TestIssueHS256(t *testing.T) {
	t.Parallel()
	// Verifiers on the real clock: IssueHS256 uses time.Now.
	v, err := auth.NewVerifier(t.Context(), auth.Config{Secret: secret, Issuer: issuer, Audience: "tasksync"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Second)
	tok, err := auth.IssueHS256(secret, "user-1", time.Hour, issuer, "tasksync")
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.UserID != "user-1" || id.Issuer != issuer {
		t.Errorf("identity %+v", id)
	}
	if exp := id.ExpiresAt; exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("exp %v, want about an hour from now", exp)
	}

	// Without iss and aud: accepted only where they are not required.
	bare, err := auth.IssueHS256(secret, "user-1", time.Minute, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), bare); err == nil {
		t.Error("a token without iss/aud passed a verifier that requires them")
	}
	lax, err := auth.NewVerifier(t.Context(), auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := lax.Verify(t.Context(), bare); err != nil || id.UserID != "user-1" || id.Issuer != "" {
		t.Errorf("bare token: %+v, %v", id, err)
	}
	// Another secret does not verify it.
	other, err := auth.NewVerifier(t.Context(), auth.Config{Secret: []byte(strings.Repeat("o", 32))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(t.Context(), bare); err == nil {
		t.Error("verified with another secret")
	}
}

func TestIssueHS256Invalid(t *testing.T) {
	t.Parallel()
	for name, call := range map[string]func() (string, error){
		"short secret": func() (string, error) { return auth.IssueHS256([]byte("short"), "u", time.Hour, "", "") },
		"empty user":   func() (string, error) { return auth.IssueHS256(secret, "", time.Hour, "", "") },
		"long user":    func() (string, error) { return auth.IssueHS256(secret, strings.Repeat("u", 257), time.Hour, "", "") },
		"zero ttl":     func() (string, error) { return auth.IssueHS256(secret, "u", 0, "", "") },
		"negative ttl": func() (string, error) { return auth.IssueHS256(secret, "u", -time.Second, "", "") },
	} {
		if tok, err := call(); err == nil || tok != "" {
			t.Errorf("%s: %q, %v; want an error", name, tok, err)
		}
	}
}

func ExampleIssueHS256() {
	secret := []byte("a development secret of at least 32 bytes")
	ctx, stop := context.WithCancel(context.Background())
	defer stop() // ends the JWKS refresh, if any (none here: no JWKSURL)

	v, err := auth.NewVerifier(ctx, auth.Config{Secret: secret, Issuer: "tasksync-dev"})
	if err != nil {
		fmt.Println(err)
		return
	}
	token, err := auth.IssueHS256(secret, "user-42", 15*time.Minute, "tasksync-dev", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	id, err := v.Verify(ctx, token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id.UserID, id.Issuer)

	_, err = v.Verify(ctx, token+"x")
	fmt.Println(err)
	// Output:
	// user-42 tasksync-dev
	// unauthorized: token signature invalid
}
