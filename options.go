package reeve

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/reevehq/reeve/internal/engine"
)

// TaskOption configures a task where it is defined (NewTask0 ... NewTask3).
type TaskOption interface{ applyTask(*engine.TaskDef) }

// BindOption configures one binding of a task into a flow (Bind and Map).
type BindOption interface{ applyBind(*bindConfig) }

// Setting is a data option: it can be given where a task is defined (as the
// task's default) and where it is bound (for that binding), and it is saved
// in the flow's spec.
type Setting struct{ fn func(*engine.Options) }

func (s Setting) applyTask(d *engine.TaskDef) { s.fn(&d.Defaults) }
func (s Setting) applyBind(c *bindConfig)     { s.fn(&c.opts) }

// Retries lets a failed or timed-out attempt run again, up to n more times,
// waiting delay between attempts.
func Retries(n int, delay time.Duration) Setting {
	return Setting{func(o *engine.Options) { o.SetRetries(n, delay) }}
}

// Backoff makes each retry wait factor times longer than the one before
// (exponential backoff), but never longer than max (0: no cap).
func Backoff(factor float64, max time.Duration) Setting {
	return Setting{func(o *engine.Options) { o.SetBackoff(factor, max) }}
}

// Timeout bounds each attempt: the task's context is cancelled after d and
// the attempt ends TimedOut (which is retried like a failure).
func Timeout(d time.Duration) Setting {
	return Setting{func(o *engine.Options) { o.SetTimeout(d) }}
}

// When sets the trigger that decides from the upstream states whether the
// task runs (default AllSuccessful).
func When(t Trigger) Setting {
	return Setting{func(o *engine.Options) { o.SetTrigger(t.t) }}
}

// SkipOnUpstreamSkip sets whether a skipped upstream task skips this one
// (default true). With false the task runs, and the skipped input is the
// zero value.
func SkipOnUpstreamSkip(v bool) Setting {
	return Setting{func(o *engine.Options) { o.SetSkipOnUpstreamSkip(v) }}
}

// CacheFor caches the task's result in its result store for d: a later run
// with the same cache key (by default the task name and a hash of its
// inputs) reuses it while it is fresh, ending Cached instead of running.
func CacheFor(d time.Duration) Setting {
	return Setting{func(o *engine.Options) { o.SetCacheFor(d) }}
}

// Checkpoint persists the task's result to its result store and records
// where in the task run's state, so a resumed or restarted server run can
// load it instead of running the task again. To reuse results across local
// runs, use CacheFor.
func Checkpoint() Setting {
	return Setting{func(o *engine.Options) { o.SetCheckpoint(true) }}
}

// NoCheckpoint keeps the task's result from ever being persisted. Server
// runs persist every result by default (so that resumed runs reuse them);
// use it for results that must not leave the process, or that are too
// large or too cheap to be worth storing. A resumed run runs such a task
// again when a downstream task that still has to run needs its value.
func NoCheckpoint() Setting {
	return Setting{func(o *engine.Options) { o.SetCheckpoint(false) }}
}

// ResultStore gives the task its own result store URL instead of the flow's.
func ResultStore(url string) Setting {
	return Setting{func(o *engine.Options) { o.SetResultStore(url) }}
}

// Serializer chooses how the task's result is persisted: "json" (default),
// "gob", or a name given to RegisterSerializer.
func Serializer(name string) Setting {
	return Setting{func(o *engine.Options) { o.SetSerializer(name) }}
}

// Tags labels the task, for display and filtering.
func Tags(tags ...string) Setting {
	return Setting{func(o *engine.Options) { o.SetTags(tags) }}
}

type hookOption func(*engine.Hooks)

func (h hookOption) applyTask(d *engine.TaskDef) { h(&d.Hooks) }

// OnStateChange registers a handler for every state change of the task's
// runs. Handlers are Go code: they belong to the task's definition and are
// not saved in specs.
func OnStateChange(h Handler) TaskOption {
	return hookOption(func(k *engine.Hooks) { k.Handlers = append(k.Handlers, h) })
}

// OnFailure registers a handler called when a run of the task ends Failed,
// TimedOut or TriggerFailed.
func OnFailure(h Handler) TaskOption {
	return OnStateChange(onKinds(h, Failed, TimedOut, TriggerFailed))
}

func onKinds(h Handler, kinds ...Kind) Handler {
	return func(ctx context.Context, c StateChange) {
		for _, k := range kinds {
			if c.New.Kind == k {
				h(ctx, c)
				return
			}
		}
	}
}

// CacheKey sets how the task's cache key is computed from its inputs
// (default: the task name and a hash of the JSON-encoded inputs).
func CacheKey(fn func(task string, inputs []any) (string, error)) TaskOption {
	return hookOption(func(k *engine.Hooks) { k.CacheKey = fn })
}

type bindOption func(*bindConfig)

func (b bindOption) applyBind(c *bindConfig) { b(c) }

// Name sets the ID of this binding in the flow (default: the task name,
// with "-2", "-3", ... for later bindings of the same task).
func Name(id string) BindOption { return bindOption(func(c *bindConfig) { c.id = id }) }

// After makes the task wait for the given tasks to finish, with no data
// passed (a state-only edge).
func After(up ...Upstream) BindOption {
	return bindOption(func(c *bindConfig) { c.after = append(c.after, up...) })
}

// UpstreamState is an upstream task run's state, as a trigger sees it.
type UpstreamState = engine.Upstream

// Trigger decides from the upstream states whether a task runs.
type Trigger struct{ t engine.Trigger }

// The built-in triggers.
var (
	AllSuccessful = Trigger{engine.Trigger{Name: engine.AllSuccessful}} // every upstream succeeded (default); Skipped and Cached count as success
	AllFinished   = Trigger{engine.Trigger{Name: engine.AllFinished}}   // always runs once upstream tasks finished, e.g. for cleanup
	AnySuccessful = Trigger{engine.Trigger{Name: engine.AnySuccessful}} // at least one upstream succeeded
	AnyFailed     = Trigger{engine.Trigger{Name: engine.AnyFailed}}     // at least one upstream failed, e.g. for alerts
	AllFailed     = Trigger{engine.Trigger{Name: engine.AllFailed}}     // every upstream failed
)

var triggers = struct {
	sync.RWMutex
	m map[string]Trigger
}{m: map[string]Trigger{}}

// NewTrigger registers a custom trigger under a name (saved in specs, so it
// must be registered in every program that loads them). fn gets every
// upstream task run's state and returns whether the task runs.
func NewTrigger(name string, fn func(upstream []UpstreamState) bool) Trigger {
	triggers.Lock()
	defer triggers.Unlock()
	for _, b := range engine.BuiltinTriggers {
		if b == name {
			panic(fmt.Sprintf("reeve: trigger name %q is built in", name))
		}
	}
	if _, dup := triggers.m[name]; dup || name == "" {
		panic(fmt.Sprintf("reeve: trigger %q: name empty or registered twice", name))
	}
	t := Trigger{engine.Trigger{Name: name, Fn: fn}}
	triggers.m[name] = t
	return t
}

// lookupTrigger finds a built-in or registered trigger by name.
func lookupTrigger(name string) (Trigger, bool) {
	for _, t := range []Trigger{AllSuccessful, AllFinished, AnySuccessful, AnyFailed, AllFailed} {
		if t.t.Name == name {
			return t, true
		}
	}
	if name == "" {
		return AllSuccessful, true
	}
	triggers.RLock()
	defer triggers.RUnlock()
	t, ok := triggers.m[name]
	return t, ok
}

// Name returns the trigger's name, e.g. "all_successful".
func (t Trigger) Name() string { return t.t.Name }
