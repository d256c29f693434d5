// Command flows is the flow program of the execute package's tests: the
// tests build it, register its flows with a real server and start its
// execute command as an agent would.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reevehq/reeve"
)

// Greet and Shout log a line each, with attributes.
var (
	Greet = reeve.NewTask1("test.greet", func(ctx context.Context, name string) (string, error) {
		reeve.Logger(ctx).Info("greeting", "name", name)
		mark(ctx, "greet")
		return "hello " + name, nil
	})
	Shout = reeve.NewTask1("test.shout", func(ctx context.Context, s string) (string, error) {
		reeve.Logger(ctx).Warn("shouting", "text", s, "n", 2)
		mark(ctx, "shout")
		return strings.ToUpper(s), nil
	})
)

// mark appends a line to $MARK_DIR/NAME when MARK_DIR is set: the tests
// count which processes ran which tasks.
func mark(ctx context.Context, name string) {
	dir := os.Getenv("MARK_DIR")
	if dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%d\n", os.Getpid())
	if d, err := time.ParseDuration(os.Getenv("MARK_SLEEP")); err == nil {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

func main() {
	hello := reeve.NewFlow("hello", reeve.Results("mem://execute-test"))
	name := reeve.Param(hello, "name", reeve.Default("world"))
	Shout.Bind(hello, Greet.Bind(hello, name))

	other := reeve.NewFlow("other", reeve.Results("mem://execute-test"))
	Greet.Bind(other, reeve.Const(other, "other"))

	reeve.Main(hello, other)
}
