package reeve

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"

	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/spec"
)

// Flow is a graph of task runs, built by Go code: bind tasks into it with
// their Bind and Map methods, declare parameters with Param and constants
// with Const. Build a flow in one goroutine; a built flow may be run many
// times, concurrently.
type Flow struct {
	g           engine.Graph
	description string
	labels      []string
	env         []spec.EnvVar
	schedule    *spec.Schedule
	params      []paramDecl // parallel to g.Params
	ids         map[string]bool
	next        map[string]int // next suffix per task name, for unique IDs
	errs        []error        // mistakes made while building, reported by Validate
	gen         int            // changes with every change of the graph
	specMu      sync.Mutex
	specChecked int // gen+1 when the spec rules last passed
}

// paramDecl is what a spec says of a parameter's type.
type paramDecl struct {
	jsonType, goType string
}

// FlowOption configures a flow.
type FlowOption func(*Flow)

// NewFlow starts a flow. Its name identifies it in specs, on the server and
// on the command line.
func NewFlow(name string, opts ...FlowOption) *Flow {
	f := &Flow{g: engine.Graph{Flow: name}, ids: map[string]bool{}, next: map[string]int{}}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Description sets a one-line description of the flow.
func Description(s string) FlowOption { return func(f *Flow) { f.description = s } }

// Labels sets the labels an agent must have to run the flow.
func Labels(labels ...string) FlowOption {
	return func(f *Flow) { f.labels = append(f.labels, labels...) }
}

// Results sets the flow's result store URL: where checkpointed and cached
// results go, e.g. "file:///var/reeve/results" or "s3://bucket/prefix"
// (cloud stores need their driver imported; see the result store docs).
func Results(url string) FlowOption { return func(f *Flow) { f.g.ResultStore = url } }

// Secrets declares the secrets the flow's tasks read with reeve.Secret.
func Secrets(names ...string) FlowOption {
	return func(f *Flow) { f.g.Secrets = append(f.g.Secrets, names...) }
}

// Env declares environment variables the flow needs; the health check
// verifies they are set.
func Env(names ...string) FlowOption {
	return func(f *Flow) {
		for _, n := range names {
			f.env = append(f.env, spec.EnvVar{Name: n})
		}
	}
}

// EnvFromAgent declares environment variables that the agent provides at
// run time, so the image and a local health check need not set them.
func EnvFromAgent(names ...string) FlowOption {
	return func(f *Flow) {
		for _, n := range names {
			f.env = append(f.env, spec.EnvVar{Name: n, FromAgent: true})
		}
	}
}

// Schedule sets a cron schedule (five fields, or a descriptor like
// "@hourly") in an IANA time zone ("" means UTC). The server creates runs
// on it once the flow is registered.
func Schedule(cron, timezone string) FlowOption {
	return func(f *Flow) { f.schedule = &spec.Schedule{Cron: cron, Timezone: timezone} }
}

// Name returns the flow's name.
func (f *Flow) Name() string { return f.g.Flow }

// OnStateChange registers a handler for the flow run's own state changes.
func (f *Flow) OnStateChange(h Handler) { f.g.Handlers = append(f.g.Handlers, h) }

// OnFailure registers a handler called when the flow run ends Failed.
func (f *Flow) OnFailure(h Handler) { f.OnStateChange(onKinds(h, Failed)) }

// ReferenceTasks sets the tasks whose states decide the flow run's final
// state. By default these are the terminal tasks (those with no downstream).
func (f *Flow) ReferenceTasks(tasks ...Upstream) {
	f.g.Reference = f.g.Reference[:0]
	f.gen++
	for _, t := range tasks {
		if i, ok := f.nodeOf(t, "ReferenceTasks"); ok {
			f.g.Reference = append(f.g.Reference, i)
		}
	}
}

// Upstream is any task result handle (a Ref of any type), for state-only
// edges and reference tasks.
type Upstream interface {
	core() refCore
}

// refCore is the untyped part of a Ref.
type refCore struct {
	f   *Flow
	arg engine.Arg
}

func (r refCore) core() refCore { return r }

// Ref is the handle to a value of type T inside a flow: the result of a
// bound task, a parameter or a constant. Pass it to other tasks' Bind and Map.
type Ref[T any] struct{ refCore }

// After makes the task run behind r wait for the given tasks to finish,
// with no data passed (a state-only edge), and returns r.
func (r Ref[T]) After(up ...Upstream) Ref[T] {
	f := r.f
	if f == nil {
		return r
	}
	i, ok := f.nodeOf(r, "After")
	if !ok {
		return r
	}
	for _, u := range up {
		if j, ok := f.nodeOf(u, "After"); ok && !slices.Contains(f.g.Nodes[i].After, j) {
			f.g.Nodes[i].After = append(f.g.Nodes[i].After, j)
			f.gen++
		}
	}
	return r
}

// nodeOf returns the node behind a task handle.
func (f *Flow) nodeOf(u Upstream, what string) (int, bool) {
	if u == nil {
		f.errs = append(f.errs, fmt.Errorf("flow %q: %s: nil task handle", f.g.Flow, what))
		return 0, false
	}
	c := u.core()
	switch {
	case c.f == nil:
		f.errs = append(f.errs, fmt.Errorf("flow %q: %s: an empty reeve.Ref (not returned by Bind, Map, Param or Const)", f.g.Flow, what))
	case c.f != f:
		f.errs = append(f.errs, fmt.Errorf("flow %q: %s: a handle from another flow (%q)", f.g.Flow, what, c.f.g.Flow))
	case c.arg.Kind != engine.ArgNode:
		f.errs = append(f.errs, fmt.Errorf("flow %q: %s takes task results, not parameters or constants", f.g.Flow, what))
	default:
		return c.arg.Node, true
	}
	return 0, false
}

// MapArg is an input of a mapped task: a list mapped over element by
// element (Each) or a value passed whole to every child (Unmapped).
type MapArg[T any] struct {
	ref  refCore
	each bool
}

type input struct {
	ref  refCore
	each bool
}

// Each maps over list: the mapped task gets one child per element. Lists
// from a mapped task are mapped child by child (child i of the downstream
// task waits for child i of the upstream one's state).
func Each[T any](list Ref[[]T]) MapArg[T] { return MapArg[T]{list.refCore, true} }

// Unmapped passes v whole to every child of a mapped task.
func Unmapped[T any](v Ref[T]) MapArg[T] { return MapArg[T]{v.refCore, false} }

// ParamOption configures a parameter.
type ParamOption[T any] func(*paramConfig[T])

type paramConfig[T any] struct {
	def    T
	hasDef bool
}

// Default gives a parameter a default value; without one it is required.
func Default[T any](v T) ParamOption[T] {
	return func(c *paramConfig[T]) { c.def, c.hasDef = v, true }
}

// Param declares a flow parameter of type T. Without a Default it is
// required: a run that does not supply it is rejected before anything runs.
func Param[T any](f *Flow, name string, opts ...ParamOption[T]) Ref[T] {
	var c paramConfig[T]
	for _, o := range opts {
		o(&c)
	}
	for _, p := range f.g.Params {
		if p.Name == name {
			f.errs = append(f.errs, fmt.Errorf("flow %q: parameter %q is declared twice", f.g.Flow, name))
		}
	}
	typ := reflect.TypeFor[T]()
	p := engine.Param{Name: name, Required: !c.hasDef, Decode: func(v any) (any, error) { return decodeAs(typ, v) }}
	if c.hasDef {
		p.Default = c.def
	}
	f.g.Params = append(f.g.Params, p)
	f.gen++
	f.params = append(f.params, paramDecl{jsonType: jsonType(typ), goType: typ.String()})
	return Ref[T]{refCore{f: f, arg: engine.Arg{Kind: engine.ArgParam, Param: len(f.g.Params) - 1}}}
}

// Const makes a constant input. It must be JSON-serializable to be saved
// in a spec.
func Const[T any](f *Flow, v T) Ref[T] {
	return Ref[T]{refCore{f: f, arg: engine.Arg{Kind: engine.ArgConst, Value: v}}}
}

// bindConfig collects the options of one binding.
type bindConfig struct {
	opts  engine.Options
	id    string
	after []Upstream
}

// bind adds a node to the flow and returns the argument that refers to it.
func (f *Flow) bind(def *engine.TaskDef, mapped bool, ins []input, opts []BindOption) engine.Arg {
	var c bindConfig
	for _, o := range opts {
		if o != nil {
			o.applyBind(&c)
		}
	}
	id := c.id
	if id == "" {
		id = def.Name
		for f.ids[id] {
			f.next[def.Name]++
			id = def.Name + "-" + strconv.Itoa(f.next[def.Name]+1)
		}
	} else if f.ids[id] {
		f.errs = append(f.errs, fmt.Errorf("flow %q: two tasks are named %q; give one another reeve.Name", f.g.Flow, id))
	}
	f.ids[id] = true
	node := &engine.Node{ID: id, Def: def, Mapped: mapped, Opts: engine.Merge(def.Defaults, c.opts)}
	if len(ins) > 0 {
		node.Args = make([]engine.Arg, len(ins))
	}
	for i, in := range ins {
		a := in.ref.arg
		switch {
		case in.ref.f == nil:
			f.errs = append(f.errs, fmt.Errorf("flow %q: task %q: input %d is an empty reeve.Ref (use one returned by Bind, Map, Param or Const)", f.g.Flow, id, i+1))
		case in.ref.f != f:
			f.errs = append(f.errs, fmt.Errorf("flow %q: task %q: input %d comes from another flow (%q)", f.g.Flow, id, i+1, in.ref.f.g.Flow))
		}
		a.Each = in.each
		node.Args[i] = a
	}
	f.g.Nodes = append(f.g.Nodes, node)
	f.gen++
	idx := len(f.g.Nodes) - 1
	for _, u := range c.after {
		if j, ok := f.nodeOf(u, "After"); ok && !slices.Contains(node.After, j) {
			node.After = append(node.After, j)
		}
	}
	return engine.Arg{Kind: engine.ArgNode, Node: idx}
}

// Validate checks the flow as a run would: mistakes made while building it
// (empty handles, duplicate names), cycles (named), unknown triggers and
// tasks that must persist results but have no result store. resultStore is
// the store a run would be given (--results), or "".
func (f *Flow) Validate(resultStore string) error {
	if f.g.Flow == "" {
		return errors.New("a flow needs a name: reeve.NewFlow(\"name\")")
	}
	if len(f.errs) > 0 {
		return errors.Join(f.errs...)
	}
	if err := f.g.Validate(resultStore); err != nil {
		return err
	}
	return f.checkSpec()
}

// checkSpec applies the spec's rules (names, durations, schedule, ...), so a
// flow that runs can also be saved and registered. It is checked once per
// change of the flow.
func (f *Flow) checkSpec() error {
	f.specMu.Lock()
	defer f.specMu.Unlock()
	if f.specChecked == f.gen+1 {
		return nil
	}
	if _, err := f.makeSpec(true); err != nil && errors.Is(err, spec.ErrInvalid) {
		return err
	}
	var errs []error
	for _, n := range f.g.Nodes {
		o := n.Opts
		if o.Retries < 0 || o.RetryDelay < 0 || o.MaxRetryDelay < 0 || o.Timeout < 0 || o.CacheFor < 0 || !(o.Backoff >= 0) {
			errs = append(errs, fmt.Errorf("flow %q: task %q: retries, delays, backoff, timeout and cache duration must not be negative", f.g.Flow, n.ID))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	f.specChecked = f.gen + 1
	return nil
}
