// Command server is the tasksync service: REST task API, realtime sockets,
// chat assistant and MCP endpoint in one binary.
//
//	server [serve]                 run the service (the default)
//	server migrate                 apply database migrations and exit (needs only DATABASE_URL)
//	server token USER_ID [--ttl D] print a signed dev token (needs AUTH_JWT_SECRET)
//
// Configuration comes from the environment; see Config in config.go and
// the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
	// Time zones of tasks and quick-add text ("tz") are read on any host,
	// also one without /usr/share/zoneinfo (a distroless image).
	_ "time/tzdata"

	"tasksync/auth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tasksync:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  server [serve]                  run the service
  server migrate                  apply database migrations and exit (needs only DATABASE_URL)
  server token USER_ID [--ttl 1h] print a signed HS256 dev token (needs AUTH_JWT_SECRET)
`

// run is main without the process: arguments, environment and output are
// parameters so that tests can run the real thing.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := loadConfig(lookup)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, newLogger(cfg, stderr), nil)
	case "migrate":
		cfg, err := loadMigrateConfig(lookup)
		if err != nil {
			return err
		}
		return migrate(ctx, cfg, newLogger(cfg, stderr), stdout)
	case "token":
		return token(args, lookup, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// token prints a dev token for USER_ID signed with the shared secret.
func token(args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	// Accept the user id before or after the flags.
	var user string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		user, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("token: %w\n%s", err, usage)
	}
	if user == "" && fs.NArg() > 0 {
		user = fs.Arg(0)
	}
	if user == "" {
		return errors.New("token: USER_ID is required\n" + usage)
	}
	if *ttl <= 0 {
		return errors.New("token: --ttl must be positive")
	}
	e := &env{lookup: lookup}
	a := loadAuth(e)
	if e.err != nil {
		return fmt.Errorf("config: %w", e.err)
	}
	if a.Secret == "" {
		return errors.New("token: AUTH_JWT_SECRET (or BETTER_AUTH_SECRET) is not set; tokens from a JWKS issuer come from that issuer")
	}
	tok, err := auth.IssueHS256([]byte(a.Secret), user, *ttl, a.Issuer, a.Audience)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
