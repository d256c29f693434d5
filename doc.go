// Package reeve is the Go SDK of Reeve, a workflow orchestrator: write flows
// of tasks as ordinary Go code, run them on a laptop, then run the same
// program in production through a Reeve server and its agents.
//
// # A complete flow
//
// A task is a Go function registered under a stable name. A flow binds tasks
// together; each binding returns a typed [Ref] to the value the task will
// return, which other tasks take as input:
//
//	package main
//
//	import (
//		"context"
//		"strings"
//		"time"
//
//		"github.com/reevehq/reeve"
//	)
//
//	var (
//		Words = reeve.NewTask1("demo.words", func(ctx context.Context, text string) ([]string, error) {
//			return strings.Fields(text), nil
//		})
//		Shout = reeve.NewTask1("demo.shout", func(ctx context.Context, w string) (string, error) {
//			return strings.ToUpper(w), nil
//		}, reeve.Retries(2, time.Second))
//		Join = reeve.NewTask1("demo.join", func(ctx context.Context, ws []string) (string, error) {
//			reeve.Logger(ctx).Info("joining", "words", len(ws))
//			return strings.Join(ws, " "), nil
//		})
//	)
//
//	func Demo() *reeve.Flow {
//		f := reeve.NewFlow("demo")
//		text := reeve.Param(f, "text", reeve.Default("hello reeve"))
//		words := Words.Bind(f, text)
//		shouted := Shout.Map(f, reeve.Each(words)) // one task run per word
//		Join.Bind(f, shouted)                      // receives every result at once
//		return f
//	}
//
//	func main() { reeve.Main(Demo()) }
//
// Then:
//
//	go run . run demo --param text="a b c"   # live progress and a summary; exit 0 on success
//	go run . save --out flows                # flows/demo.json, the portable spec
//	go run . healthcheck                     # every task resolves, stores, env, secrets
//
// The compiler checks the wiring: binding Shout to a Ref[int] does not compile.
//
// # Tasks
//
// [NewTask0] to [NewTask3] register functions of zero to three inputs (take
// a struct for more). Register each task once, as a package-level variable:
// specs refer to tasks by name, so a program that loads a spec must register
// the tasks it names. Options given at definition are the task's defaults;
// the same [Setting] options given to Bind or Map override them for one
// binding. [OnStateChange], [OnFailure] and [CacheKey] are Go code and belong
// to the definition only.
//
// # Parameters and constants
//
// [Param] declares a typed parameter; with [Default] it is optional, without
// it required. A run is rejected before anything runs when a parameter is
// missing, unknown or of the wrong type, and the error names it. [Const]
// makes a constant input.
//
// # Edges
//
// Passing a Ref makes a data edge. [After] (or [Ref.After]) makes a
// state-only edge: run after those tasks, with no data. A cycle is rejected
// when the flow is validated, and the error names it ("a → b → a").
//
// # Mapping
//
// Map runs a task once per element of a list: [Each] maps over a Ref to a
// slice (zipping several), [Unmapped] passes a value whole to every child.
// Each child is a task run of its own, with its own state, retries and
// result. Mapping over the output of a mapped task goes child by child. A
// task bound to the output of a mapped task receives the whole []R once all
// children are finished (a reduce). Empty lists map to zero children.
//
// # States and triggers
//
// Every flow run and task run moves through the states of [State]: Pending,
// Running, Retrying, then Success, Failed, TimedOut, TriggerFailed, Skipped,
// Cached, Mapped or Cancelled, each with a message, timestamps and, where
// there is one, a result. A task runs when its trigger passes ([When]):
// [AllSuccessful] (the default), [AllFinished], [AnySuccessful], [AnyFailed],
// [AllFailed], or a custom one from [NewTrigger]. A task can end itself with
// [Skip], [Fail] or [Retry]; a skip propagates downstream unless the
// downstream task sets [SkipOnUpstreamSkip](false). The reference tasks
// (by default the terminal tasks; see [Flow.ReferenceTasks]) decide the
// flow run's final state.
//
// # Retries, timeouts, cancellation
//
// [Retries] and [Backoff] retry failed attempts; [Timeout] cancels an
// attempt's context and ends it TimedOut (retried like a failure).
// Cancelling the context given to [Flow.Run] stops scheduling and ends the
// run Cancelled. A panic in a task ends it Failed with the panic value and
// stack; it never crashes the program.
//
// # Results and caching
//
// A task marked [Checkpoint] writes its result to a result store addressed
// by URL ([Results] on the flow, [ResultStore] on a task, or --results):
// file:// and mem:// always work; s3://, gs:// and azblob:// need their
// gocloud driver imported in the main package (import _
// "gocloud.dev/blob/s3blob"), which keeps programs that do not use them
// small. [CacheFor] reuses a fresh earlier result instead of running,
// ending Cached. Persisting without a store is an error when the flow is
// validated, naming the task. In server runs every result is persisted (to
// the flow's store, or the server's own for small results) so that
// retries, restarts and resumed runs reuse them; [NoCheckpoint] opts a task
// out.
//
// # Secrets, environment, logs
//
// Tasks read secrets with [Secret], never os.Getenv: locally from
// REEVE_SECRET_<NAME> or a secrets file, on a server from the server. Flows
// declare them ([Secrets]) and the environment variables they need ([Env],
// [EnvFromAgent]) so the health check can verify them; secret values are
// redacted from state messages and logs. [Logger] gives each task run a
// log/slog logger whose records carry the flow, flow run, task and task run
// and are kept with the task run.
//
// # Specs
//
// [Flow.Save] writes a flow as a versioned JSON spec; [LoadFlow] rebuilds a
// runnable flow from one inside any program that registers the named tasks
// (an error lists every missing task); [Flow.SpecHash] identifies a version.
//
// # On a server
//
// The same program runs its flows for a Reeve server. During development it
// registers itself, with its own path as the program agents start:
//
//	go build -o myflows . && ./myflows register --server http://127.0.0.1:4200 --project default
//	reeve agent process                       # claims the runs, starts `myflows execute` for each
//	reeve run create demo --param text=hi     # then reeve run logs -f, reeve run show
//
// `execute` is the runner: it checks that the program was built for the
// registered spec, runs the flow, and reports task states, logs and
// heartbeats to the server; a run whose runner is lost is re-queued and
// resumed without re-running what finished. `reeve quickstart` shows it all
// on one machine.
package reeve
