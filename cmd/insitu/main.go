// Command insitu is the one binary of the insitu joint credit-modeling lab: every role's commands
// (platform steward, bank, researcher, admin) are its subcommands. Run `insitu --help` for the list and
// `insitu demo` for a walkthrough on synthetic data.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"insitu/enclave/sandbox"
)

func main() {
	// When this process is the set-up stage of a plugin sandbox, this call never returns: it builds the
	// sandbox and execs the plugin. Otherwise it returns at once.
	sandbox.MaybeRunTrampoline()
	if err := run(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "insitu:", ee.err)
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "insitu:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	return root.ExecuteContext(ctx)
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a mistake in how a command was called (exit code 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}
