package reeve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/spec"
)

// toSpec serializes the flow. It fails on a flow that does not validate
// and on constants or defaults that are not JSON-serializable.
func (f *Flow) toSpec() (*spec.Spec, error) { return f.makeSpec(false) }

// makeSpec builds the spec; light leaves out every task but the first (for
// checking the flow's own fields quickly).
func (f *Flow) makeSpec(light bool) (*spec.Spec, error) {
	if len(f.errs) > 0 {
		return nil, errors.Join(f.errs...)
	}
	s := &spec.Spec{
		SpecVersion: spec.Version,
		Name:        f.g.Flow,
		Description: f.description,
		ResultStore: f.g.ResultStore,
		Env:         slices.Clone(f.env),
		Schedule:    f.schedule,
	}
	if len(f.labels) > 0 {
		s.Labels = slices.Compact(slices.Sorted(slices.Values(f.labels)))
	}
	for _, name := range f.g.Secrets {
		s.Secrets = append(s.Secrets, spec.Secret{Name: name})
	}
	var errs []error
	for i, p := range f.g.Params {
		d := f.params[i]
		sp := spec.Parameter{Name: p.Name, Type: d.jsonType, GoType: d.goType, Required: p.Required}
		if !p.Required {
			b, err := json.Marshal(p.Default)
			if err != nil {
				errs = append(errs, fmt.Errorf("flow %q: the default of parameter %q cannot be saved as JSON: %w", f.g.Flow, p.Name, err))
			}
			sp.Default = b
		}
		s.Parameters = append(s.Parameters, sp)
	}
	for ni, n := range f.g.Nodes {
		if light && ni > 0 {
			break
		}
		t := spec.Task{ID: n.ID, Task: n.Def.Name, Mapped: n.Mapped, Options: specOptions(n.Opts)}
		if light {
			t.Mapped = false
			s.Tasks = append(s.Tasks, t)
			continue
		}
		for ai, a := range n.Args {
			in := spec.Input{Each: a.Each}
			switch a.Kind {
			case engine.ArgNode:
				in.Kind, in.Task = spec.InputTask, f.g.Nodes[a.Node].ID
			case engine.ArgParam:
				in.Kind, in.Param = spec.InputParam, f.g.Params[a.Param].Name
			case engine.ArgConst:
				b, err := json.Marshal(a.Value)
				if err != nil {
					errs = append(errs, fmt.Errorf("flow %q: task %q: constant input %d cannot be saved as JSON: %w", f.g.Flow, n.ID, ai+1, err))
				}
				in.Kind, in.Value = spec.InputConst, b
			}
			t.Inputs = append(t.Inputs, in)
		}
		for _, u := range n.After {
			t.After = append(t.After, f.g.Nodes[u].ID)
		}
		s.Tasks = append(s.Tasks, t)
	}
	for _, i := range f.g.Reference {
		if light {
			break
		}
		s.ReferenceTasks = append(s.ReferenceTasks, f.g.Nodes[i].ID)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func specOptions(o engine.Options) spec.Options {
	return spec.Options{
		Retries:            o.Retries,
		RetryDelay:         spec.Duration(o.RetryDelay),
		Backoff:            o.Backoff,
		MaxRetryDelay:      spec.Duration(o.MaxRetryDelay),
		Timeout:            spec.Duration(o.Timeout),
		Trigger:            o.Trigger.Name,
		SkipOnUpstreamSkip: o.SkipOnUpstreamSkip,
		CacheFor:           spec.Duration(o.CacheFor),
		Checkpoint:         o.Checkpoint,
		NoCheckpoint:       o.CheckpointOff(),
		ResultStore:        o.ResultStore,
		Serializer:         o.Serializer,
		Tags:               slices.Clone(o.Tags),
	}
}

// jsonType names the JSON type a parameter of Go type t takes.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string" // encoding/json writes []byte as base64
		}
		return "array"
	case reflect.Map, reflect.Struct:
		if t.Implements(reflect.TypeFor[json.Marshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Marshaler]()) {
			return "any"
		}
		return "object"
	}
	return "any"
}

// Save writes the flow's spec as JSON: every task by its registered name,
// the edges, mapping, parameters, options, labels, result store, declared
// secrets and environment variables, and schedule.
func (f *Flow) Save(w io.Writer) error {
	s, err := f.toSpec()
	if err != nil {
		return err
	}
	b, err := spec.Encode(s)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// SpecHash returns the content hash of the flow's spec ("sha256:..."): the
// same flow always has the same hash, and any change gives another.
func (f *Flow) SpecHash() (string, error) {
	s, err := f.toSpec()
	if err != nil {
		return "", err
	}
	return s.Hash(), nil
}

// LoadFlow rebuilds a runnable flow from a spec written by Save. Every task
// the spec names must be registered in this program: the error lists every
// one that is missing. Flow state handlers are Go code, not data, so a
// loaded flow has none; task handlers come with the registered tasks.
func LoadFlow(r io.Reader) (*Flow, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read flow spec: %w", err)
	}
	s, err := spec.Decode(data)
	if err != nil {
		return nil, err
	}
	return fromSpec(s)
}

func fromSpec(s *spec.Spec) (*Flow, error) {
	var missing []string
	for _, name := range s.TaskNames() {
		if lookupTask(name) == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("flow %q needs %d task(s) this program does not register: %s; build the program that defines them (registered here: %s)",
			s.Name, len(missing), strings.Join(missing, ", "), orNone(TaskNames()))
	}
	f := NewFlow(s.Name, Description(s.Description), Labels(s.Labels...), Results(s.ResultStore))
	f.env = slices.Clone(s.Env)
	f.schedule = s.Schedule
	for _, sec := range s.Secrets {
		f.g.Secrets = append(f.g.Secrets, sec.Name)
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("flow %q: "+format, append([]any{s.Name}, args...)...))
	}
	// Each parameter takes the Go type of the task inputs it feeds.
	ptypes := map[string]reflect.Type{}
	index := map[string]int{}
	for i, t := range s.Tasks {
		index[t.ID] = i
		def := lookupTask(t.Task)
		if len(t.Inputs) != len(def.ArgTypes) {
			fail("task %q: the spec gives %d inputs but task %q takes %d", t.ID, len(t.Inputs), t.Task, len(def.ArgTypes))
			continue
		}
		for ai, in := range t.Inputs {
			if in.Kind != spec.InputParam {
				continue
			}
			want := inputType(def.ArgTypes[ai], in.Each)
			if prev, ok := ptypes[in.Param]; ok && prev != want {
				fail("parameter %q feeds inputs of types %v and %v", in.Param, prev, want)
			}
			ptypes[in.Param] = want
		}
	}
	pindex := map[string]int{}
	for i, p := range s.Parameters {
		typ := ptypes[p.Name]
		if typ == nil {
			typ = reflect.TypeFor[any]()
		}
		ep := engine.Param{Name: p.Name, Required: p.Required, Decode: func(v any) (any, error) { return decodeAs(typ, v) }}
		if !p.Required {
			v, err := decodeAs(typ, json.RawMessage(p.Default))
			if err != nil {
				fail("default of parameter %q: %v", p.Name, err)
			}
			ep.Default = v
		}
		f.g.Params = append(f.g.Params, ep)
		f.params = append(f.params, paramDecl{jsonType: p.Type, goType: p.GoType})
		pindex[p.Name] = i
	}
	for _, t := range s.Tasks {
		def := lookupTask(t.Task)
		opts, err := engineOptions(t.Options)
		if err != nil {
			fail("task %q: %v", t.ID, err)
		}
		node := &engine.Node{ID: t.ID, Def: def, Mapped: t.Mapped, Opts: opts}
		f.ids[t.ID] = true
		for ai, in := range t.Inputs {
			if ai >= len(def.ArgTypes) {
				break
			}
			want := inputType(def.ArgTypes[ai], in.Each)
			a := engine.Arg{Each: in.Each}
			switch in.Kind {
			case spec.InputTask:
				a.Kind, a.Node = engine.ArgNode, index[in.Task]
				up := s.Tasks[a.Node]
				got := lookupTask(up.Task).Result
				if up.Mapped {
					got = reflect.SliceOf(got)
				}
				if !got.AssignableTo(want) {
					fail("task %q: input %d wants %v but task %q gives %v", t.ID, ai+1, want, up.ID, got)
				}
			case spec.InputParam:
				a.Kind, a.Param = engine.ArgParam, pindex[in.Param]
			case spec.InputConst:
				v, err := decodeAs(want, json.RawMessage(in.Value))
				if err != nil {
					fail("task %q: constant input %d: %v", t.ID, ai+1, err)
				}
				a.Kind, a.Value = engine.ArgConst, v
			}
			node.Args = append(node.Args, a)
		}
		for _, u := range t.After {
			node.After = append(node.After, index[u])
		}
		f.g.Nodes = append(f.g.Nodes, node)
	}
	for _, id := range s.ReferenceTasks {
		f.g.Reference = append(f.g.Reference, index[id])
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

func inputType(arg reflect.Type, each bool) reflect.Type {
	if each {
		return reflect.SliceOf(arg)
	}
	return arg
}

// engineOptions turns spec options into engine options, all marked set.
func engineOptions(o spec.Options) (engine.Options, error) {
	var e engine.Options
	e.SetRetries(o.Retries, o.RetryDelay.D())
	e.SetBackoff(o.Backoff, o.MaxRetryDelay.D())
	e.SetTimeout(o.Timeout.D())
	t, ok := lookupTrigger(o.Trigger)
	if !ok {
		return e, fmt.Errorf("trigger %q is not registered in this program; register it with reeve.NewTrigger", o.Trigger)
	}
	if o.Trigger == "" {
		t = Trigger{}
	}
	e.SetTrigger(t.t)
	if o.SkipOnUpstreamSkip != nil {
		e.SetSkipOnUpstreamSkip(*o.SkipOnUpstreamSkip)
	}
	e.SetCacheFor(o.CacheFor.D())
	if o.NoCheckpoint {
		e.SetCheckpoint(false)
	}
	if o.Checkpoint {
		// Only a true value is set: a spec cannot say "explicitly off", and
		// marking every task so would keep the runner's CheckpointAll from
		// persisting results for resumed runs.
		e.SetCheckpoint(true)
	}
	e.SetResultStore(o.ResultStore)
	if _, err := result.LookupSerializer(o.Serializer); err != nil {
		return e, err
	}
	e.SetSerializer(o.Serializer)
	if len(o.Tags) > 0 {
		e.SetTags(slices.Clone(o.Tags))
	}
	return e, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
