// Package engine runs a flow graph: the state pipeline of each task run
// (skip propagation → trigger → cache → run with timeout → retry →
// checkpoint), the sequential and bounded parallel executors, mapping, and
// the final flow state from reference tasks.
//
// The engine knows nothing of HTTP or of the typed SDK. The root package
// builds a Graph out of typed tasks (each TaskDef carries untyped adapters
// generated from the task's Go types) and hands it to Execute; progress
// leaves through the small Reporter interface and results go to result
// stores addressed by URL.
//
// A flow run can span several calls of Execute (a long retry, a lost
// runner, a restart): Config.Prior hands a call the task run states earlier
// calls recorded, and task runs that finished successfully are taken over,
// with their results loaded from the result store only where a task run that
// still has to run needs them. Config.MaxRetryWait hands retries that are
// too far away back to the caller (the run ends Scheduled), and
// Config.CheckpointAll persists every result so that resuming is possible.
// resume.go says exactly which prior states are taken over.
package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// TaskDef is a registered task: a Go function with untyped adapters that the
// SDK generates from its type parameters.
type TaskDef struct {
	Name string // stable registered name

	// Call runs the function with one value per argument. A nil argument
	// stands for the argument type's zero value.
	Call func(ctx context.Context, args []any) (any, error)
	// ArgTypes are the Go types of the arguments; Result the result type.
	ArgTypes []reflect.Type
	Result   reflect.Type
	// Elems splits a list value ([]A) for argument i into its elements,
	// for mapping. Only for argument types that are slices' elements.
	Elems []func(list any) ([]any, error)
	// Collect turns children's results into the typed []R of a mapped task.
	Collect func(values []any) any
	// DecodeResult decodes a stored result with a serializer.
	DecodeResult func(unmarshal func(data []byte, v any) error, data []byte) (any, error)

	Defaults Options // options given at definition; binding may override
	Hooks    Hooks   // code-valued options: travel with the registered task
}

// Hooks are the options of a task that are Go code rather than data.
type Hooks struct {
	Handlers []Handler
	// CacheKey computes the cache key from the task's inputs; nil means the
	// task name plus a hash of the JSON-encoded inputs.
	CacheKey func(task string, inputs []any) (string, error)
}

// Options are the data options of a bound task; they serialize into specs.
type Options struct {
	Retries            int
	RetryDelay         time.Duration
	Backoff            float64       // multiplier per retry; 0 or 1: constant delay
	MaxRetryDelay      time.Duration // 0: no cap
	Timeout            time.Duration
	Trigger            Trigger // zero value: all_successful
	SkipOnUpstreamSkip *bool   // nil: true
	CacheFor           time.Duration
	Checkpoint         bool
	ResultStore        string
	Serializer         string // "": json
	Tags               []string

	set optionSet // which fields were set explicitly, for merging
}

type optionSet uint16

const (
	setRetries optionSet = 1 << iota
	setRetryDelay
	setBackoff
	setMaxRetryDelay
	setTimeout
	setTrigger
	setSkip
	setCacheFor
	setCheckpoint
	setStore
	setSerializer
	setTags
)

// SetRetries and the other setters set one option and remember that it was
// set, so Merge can layer binding options over definition defaults.
func (o *Options) SetRetries(n int, delay time.Duration) {
	o.Retries, o.RetryDelay = n, delay
	o.set |= setRetries | setRetryDelay
}

// SetBackoff sets exponential backoff: each retry waits factor times longer,
// up to max (0: no cap).
func (o *Options) SetBackoff(factor float64, max time.Duration) {
	o.Backoff, o.MaxRetryDelay = factor, max
	o.set |= setBackoff | setMaxRetryDelay
}

// SetTimeout sets the per-attempt timeout.
func (o *Options) SetTimeout(d time.Duration) { o.Timeout = d; o.set |= setTimeout }

// SetTrigger sets the trigger.
func (o *Options) SetTrigger(t Trigger) { o.Trigger = t; o.set |= setTrigger }

// SetSkipOnUpstreamSkip sets whether an upstream skip skips this task.
func (o *Options) SetSkipOnUpstreamSkip(v bool) { o.SkipOnUpstreamSkip = &v; o.set |= setSkip }

// SetCacheFor sets how long a cached result stays fresh.
func (o *Options) SetCacheFor(d time.Duration) { o.CacheFor = d; o.set |= setCacheFor }

// CheckpointOff reports whether checkpointing was turned off explicitly
// (SetCheckpoint(false)), which CheckpointAll respects.
func (o *Options) CheckpointOff() bool { return o.set&setCheckpoint != 0 && !o.Checkpoint }

// SetCheckpoint sets whether the result is persisted.
func (o *Options) SetCheckpoint(v bool) { o.Checkpoint = v; o.set |= setCheckpoint }

// SetResultStore sets the task's own result store URL.
func (o *Options) SetResultStore(url string) { o.ResultStore = url; o.set |= setStore }

// SetSerializer sets the serializer by name.
func (o *Options) SetSerializer(name string) { o.Serializer = name; o.set |= setSerializer }

// SetTags sets the tags.
func (o *Options) SetTags(tags []string) { o.Tags = tags; o.set |= setTags }

// Merge returns base with every option that over set explicitly replaced.
func Merge(base, over Options) Options {
	out := base
	if over.set&setRetries != 0 {
		out.Retries = over.Retries
	}
	if over.set&setRetryDelay != 0 {
		out.RetryDelay = over.RetryDelay
	}
	if over.set&setBackoff != 0 {
		out.Backoff = over.Backoff
	}
	if over.set&setMaxRetryDelay != 0 {
		out.MaxRetryDelay = over.MaxRetryDelay
	}
	if over.set&setTimeout != 0 {
		out.Timeout = over.Timeout
	}
	if over.set&setTrigger != 0 {
		out.Trigger = over.Trigger
	}
	if over.set&setSkip != 0 {
		out.SkipOnUpstreamSkip = over.SkipOnUpstreamSkip
	}
	if over.set&setCacheFor != 0 {
		out.CacheFor = over.CacheFor
	}
	if over.set&setCheckpoint != 0 {
		out.Checkpoint = over.Checkpoint
	}
	if over.set&setStore != 0 {
		out.ResultStore = over.ResultStore
	}
	if over.set&setSerializer != 0 {
		out.Serializer = over.Serializer
	}
	if over.set&setTags != 0 {
		out.Tags = over.Tags
	}
	out.set = base.set | over.set
	return out
}

// skipOnSkip reports the effective skip_on_upstream_skip.
func (o *Options) skipOnSkip() bool { return o.SkipOnUpstreamSkip == nil || *o.SkipOnUpstreamSkip }

// persists reports whether results of the task are written to a store.
func (o *Options) persists() bool { return o.Checkpoint || o.CacheFor > 0 }

// retryDelay is the wait before attempt+1, after attempt (1-based) failed.
func (o *Options) retryDelay(attempt int) time.Duration {
	d := o.RetryDelay
	if o.Backoff > 1 {
		f := float64(d)
		for i := 1; i < attempt; i++ {
			f *= o.Backoff
			if o.MaxRetryDelay > 0 && f >= float64(o.MaxRetryDelay) {
				break
			}
		}
		d = time.Duration(f)
	}
	if o.MaxRetryDelay > 0 && d > o.MaxRetryDelay {
		d = o.MaxRetryDelay
	}
	return d
}

// ArgKind says where an argument's value comes from.
type ArgKind uint8

// The sources of an argument.
const (
	ArgNode  ArgKind = iota // another node's result
	ArgParam                // a flow parameter
	ArgConst                // a constant
)

// Arg is one argument of a node.
type Arg struct {
	Kind  ArgKind
	Node  int // ArgNode: upstream node index
	Param int // ArgParam: parameter index
	Value any // ArgConst: the value, already of the argument's type
	Each  bool
}

// Node is a task bound into a graph.
type Node struct {
	ID     string // unique in the graph
	Def    *TaskDef
	Args   []Arg
	After  []int // state-only upstream node indices
	Mapped bool
	Opts   Options // effective options (definition defaults merged with binding)
}

// Param is a flow parameter.
type Param struct {
	Name     string
	Required bool
	Default  any // of the parameter's type; only when !Required
	// Decode turns a supplied value into the parameter's Go type.
	Decode func(v any) (any, error)
}

// Graph is a flow ready to run.
type Graph struct {
	Flow        string
	Nodes       []*Node
	Params      []Param
	ResultStore string   // the flow's default store URL
	Reference   []int    // reference node indices; empty: terminal nodes
	Secrets     []string // declared secret names
	Handlers    []Handler
}

// upstream calls fn for each distinct upstream node index of n (data edges
// then state edges).
func (n *Node) upstream(fn func(i int)) {
	for _, a := range n.Args {
		if a.Kind == ArgNode {
			fn(a.Node)
		}
	}
	for _, u := range n.After {
		fn(u)
	}
}

// Validate checks what must hold before anything runs: every reference is in
// range, the graph has no cycle (the error names it), every trigger is known,
// and every task whose result must be persisted has a result store.
// storeOverride is the run's store URL (--results), if any.
func (g *Graph) Validate(storeOverride string) error {
	var errs []error
	n := len(g.Nodes)
	for _, node := range g.Nodes {
		node.upstream(func(u int) {
			if u < 0 || u >= n {
				errs = append(errs, fmt.Errorf("task %q refers to an upstream task that is not in flow %q", node.ID, g.Flow))
			}
		})
		if node.Mapped && !slices.ContainsFunc(node.Args, func(a Arg) bool { return a.Each }) {
			errs = append(errs, fmt.Errorf("task %q is mapped but none of its inputs is mapped over; wrap a list input in reeve.Each", node.ID))
		}
		if node.Opts.Trigger.Name != "" && node.Opts.Trigger.Fn == nil && builtinTrigger(node.Opts.Trigger.Name) == nil {
			errs = append(errs, fmt.Errorf("task %q: unknown trigger %q; use a built-in trigger or register it with reeve.NewTrigger", node.ID, node.Opts.Trigger.Name))
		}
		if node.Opts.persists() && node.Opts.ResultStore == "" && g.ResultStore == "" && storeOverride == "" {
			what := "checkpointed"
			if !node.Opts.Checkpoint {
				what = "cached"
			}
			errs = append(errs, fmt.Errorf("flow %q: task %q is %s but no result store is configured; set one with reeve.Results(url) on the flow, reeve.ResultStore(url) on the task, or --results URL (e.g. --results file://./results)", g.Flow, node.ID, what))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c := g.cycle(); c != nil {
		names := make([]string, len(c))
		for i, idx := range c {
			names[i] = g.Nodes[idx].ID
		}
		return fmt.Errorf("flow %q has a cycle: %s", g.Flow, strings.Join(names, " → "))
	}
	return nil
}

// cycle returns a cycle as node indices (first repeated at the end), or nil.
func (g *Graph) cycle() []int {
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(g.Nodes))
	// Iterative DFS over downstream edges to survive 100,000-node chains.
	down := g.downstream()
	type frame struct{ node, next int }
	parent := make([]int, len(g.Nodes))
	for start := range g.Nodes {
		if color[start] != white {
			continue
		}
		stack := []frame{{start, 0}}
		color[start] = grey
		parent[start] = -1
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < len(down[top.node]) {
				d := down[top.node][top.next]
				top.next++
				switch color[d] {
				case white:
					color[d] = grey
					parent[d] = top.node
					stack = append(stack, frame{d, 0})
				case grey:
					// d → ... → top.node → d
					var c []int
					for x := top.node; x != d; x = parent[x] {
						c = append(c, x)
					}
					c = append(c, d)
					slices.Reverse(c)
					return append(c, d)
				}
				continue
			}
			color[top.node] = black
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// downstream returns, per node, the distinct downstream node indices.
func (g *Graph) downstream() [][]int {
	down := make([][]int, len(g.Nodes))
	for i, node := range g.Nodes {
		node.upstream(func(u int) {
			if u >= 0 && u < len(down) && !slices.Contains(down[u], i) {
				down[u] = append(down[u], i)
			}
		})
	}
	return down
}

// ResolveParams turns supplied parameter values into typed values, one per
// graph parameter, using defaults. Unknown and missing parameters and values
// of the wrong type are all reported, each by name.
func (g *Graph) ResolveParams(supplied map[string]any) ([]any, error) {
	var errs []error
	known := make(map[string]bool, len(g.Params))
	for _, p := range g.Params {
		known[p.Name] = true
	}
	var unknown []string
	for name := range supplied {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		names := make([]string, len(g.Params))
		for i, p := range g.Params {
			names[i] = p.Name
		}
		list := "it has no parameters"
		if len(names) > 0 {
			list = "its parameters are " + strings.Join(names, ", ")
		}
		errs = append(errs, fmt.Errorf("flow %q: unknown parameter %q (%s)", g.Flow, name, list))
	}
	values := make([]any, len(g.Params))
	for i, p := range g.Params {
		v, ok := supplied[p.Name]
		if !ok {
			if p.Required {
				errs = append(errs, fmt.Errorf("flow %q: missing required parameter %q", g.Flow, p.Name))
			}
			values[i] = p.Default
			continue
		}
		dv, err := p.Decode(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("flow %q: parameter %q: %w", g.Flow, p.Name, err))
			continue
		}
		values[i] = dv
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return values, nil
}
