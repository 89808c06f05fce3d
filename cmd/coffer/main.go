// Command coffer backs up and restores files and folders to a vault.
//
// main only parses flags, builds objects and calls them; the work lives in
// internal/. Exit codes are documented in doc/CLI.md and mapped in exit.go.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	g := newGlobals(os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	err := newRootCmd(g).ExecuteContext(ctx)
	stop()
	code := exitCode(err)
	if err != nil && err != errPartial { // errPartial alone: the report said it all
		fmt.Fprintf(os.Stderr, "coffer: %v\n", err)
	}
	os.Exit(code)
}
