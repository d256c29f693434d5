// Command reeve runs the Reeve server and drives it: see `reeve --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/reevehq/reeve/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the first signal cancels ctx (a graceful shutdown); a second one ends the process at once
	}()
	code := cli.New(cli.Options{}).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
