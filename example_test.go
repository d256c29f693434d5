package reeve_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reevehq/reeve"
)

var (
	words = reeve.NewTask1("example.words", func(_ context.Context, text string) ([]string, error) {
		return strings.Fields(text), nil
	})
	shout = reeve.NewTask1("example.shout", func(_ context.Context, w string) (string, error) {
		return strings.ToUpper(w), nil
	}, reeve.Retries(2, time.Second))
	join = reeve.NewTask1("example.join", func(_ context.Context, ws []string) (string, error) {
		return strings.Join(ws, " "), nil
	})
)

// A flow with a parameter, a mapped task and a reduce, run in-process.
func ExampleNewFlow() {
	f := reeve.NewFlow("demo")
	text := reeve.Param(f, "text", reeve.Default("hello reeve"))
	shouted := shout.Map(f, reeve.Each(words.Bind(f, text)))
	joined := join.Bind(f, shouted)

	run, err := f.Run(context.Background(), reeve.RunOptions{Params: map[string]any{"text": "map each word"}})
	if err != nil {
		fmt.Println("invalid:", err)
		return
	}
	out, _ := reeve.ResultOf(run, joined)
	fmt.Println(run.State().Kind, out)
	// Output: Success MAP EACH WORD
}

// Parameters are checked before anything runs.
func ExampleParam() {
	f := reeve.NewFlow("greet")
	who := reeve.Param[string](f, "who") // required: no default
	shout.Bind(f, who)
	_, err := f.Run(context.Background(), reeve.RunOptions{})
	fmt.Println(err)
	// Output: flow "greet": missing required parameter "who"
}

// Triggers decide whether a task runs from its upstream states.
func ExampleWhen() {
	fail := reeve.NewTask0("example.fail", func(context.Context) (string, error) {
		return "", fmt.Errorf("disk full")
	})
	f := reeve.NewFlow("alert")
	broken := fail.Bind(f)
	alert := shout.Bind(f, reeve.Const(f, "something failed"), reeve.After(broken), reeve.When(reeve.AnyFailed))
	run, _ := f.Run(context.Background(), reeve.RunOptions{})
	tr, _ := run.Of(alert)
	fmt.Println(tr.State.Kind, tr.State.Result.Value)
	// Output: Success SOMETHING FAILED
}
