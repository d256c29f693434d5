// This program must not compile: it wires a Ref[string] into an int input.
package main

import (
	"context"

	"github.com/reevehq/reeve"
)

var double = reeve.NewTask1("double", func(_ context.Context, n int) (int, error) { return 2 * n, nil })

func main() {
	f := reeve.NewFlow("typeerror")
	name := reeve.Param(f, "name", reeve.Default("x"))
	double.Bind(f, name)
	reeve.Main(f)
}
