package reeve

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sort"
	"sync"

	"github.com/reevehq/reeve/internal/engine"
)

// The registry of tasks: every NewTaskN call registers its task under its
// name, so that a flow loaded from a spec finds its functions.
var registry = struct {
	sync.RWMutex
	tasks map[string]*engine.TaskDef
	where map[string]string
}{tasks: map[string]*engine.TaskDef{}, where: map[string]string{}}

func register(def *engine.TaskDef, opts []TaskOption) {
	if def.Name == "" {
		panic("reeve: a task needs a name: the stable name specs refer to it by")
	}
	for _, o := range opts {
		if o != nil {
			o.applyTask(def)
		}
	}
	where := "unknown"
	if _, file, line, ok := runtime.Caller(2); ok {
		where = fmt.Sprintf("%s:%d", file, line)
	}
	registry.Lock()
	defer registry.Unlock()
	if prev, dup := registry.where[def.Name]; dup {
		panic(fmt.Sprintf("reeve: task %q is registered twice (at %s and at %s); task names must be unique in a program", def.Name, prev, where))
	}
	registry.tasks[def.Name] = def
	registry.where[def.Name] = where
}

func lookupTask(name string) *engine.TaskDef {
	registry.RLock()
	defer registry.RUnlock()
	return registry.tasks[name]
}

// TaskNames returns the names of every task registered in this program, sorted.
func TaskNames() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.tasks))
	for n := range registry.tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// arg returns argument i of a task call, or the zero value of A.
func arg[A any](args []any, i int) A {
	a, _ := args[i].(A)
	return a
}

func elems[A any](list any) ([]any, error) {
	if list == nil {
		return nil, nil
	}
	s, ok := list.([]A)
	if !ok {
		return nil, fmt.Errorf("want a list of %v, got %T", reflect.TypeFor[A](), list)
	}
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out, nil
}

func collect[R any](values []any) any {
	out := make([]R, len(values))
	for i, v := range values {
		out[i], _ = v.(R)
	}
	return out
}

func decodeResult[R any](unmarshal func([]byte, any) error, data []byte) (any, error) {
	var r R
	if err := unmarshal(data, &r); err != nil {
		return nil, err
	}
	return r, nil
}

func newDef[R any](name string, call func(context.Context, []any) (any, error), argTypes []reflect.Type, elemFns []func(any) ([]any, error)) *engine.TaskDef {
	return &engine.TaskDef{
		Name:         name,
		Call:         call,
		ArgTypes:     argTypes,
		Result:       reflect.TypeFor[R](),
		Elems:        elemFns,
		Collect:      collect[R],
		DecodeResult: decodeResult[R],
	}
}

// Task0 is a task with no inputs that returns an R.
type Task0[R any] struct{ def *engine.TaskDef }

// Task1 is a task with one input.
type Task1[A, R any] struct{ def *engine.TaskDef }

// Task2 is a task with two inputs.
type Task2[A, B, R any] struct{ def *engine.TaskDef }

// Task3 is a task with three inputs. For more, take a struct.
type Task3[A, B, C, R any] struct{ def *engine.TaskDef }

// NewTask0 registers fn as a task under name. The name is what specs refer
// to, so keep it stable ("etl.extract"); registering one name twice panics.
// Call it once per task, as a package-level variable.
func NewTask0[R any](name string, fn func(ctx context.Context) (R, error), opts ...TaskOption) *Task0[R] {
	def := newDef[R](name, func(ctx context.Context, _ []any) (any, error) { return fn(ctx) }, nil, nil)
	register(def, opts)
	return &Task0[R]{def}
}

// NewTask1 registers a task of one input; see NewTask0.
func NewTask1[A, R any](name string, fn func(ctx context.Context, a A) (R, error), opts ...TaskOption) *Task1[A, R] {
	def := newDef[R](name, func(ctx context.Context, args []any) (any, error) {
		return fn(ctx, arg[A](args, 0))
	}, []reflect.Type{reflect.TypeFor[A]()}, []func(any) ([]any, error){elems[A]})
	register(def, opts)
	return &Task1[A, R]{def}
}

// NewTask2 registers a task of two inputs; see NewTask0.
func NewTask2[A, B, R any](name string, fn func(ctx context.Context, a A, b B) (R, error), opts ...TaskOption) *Task2[A, B, R] {
	def := newDef[R](name, func(ctx context.Context, args []any) (any, error) {
		return fn(ctx, arg[A](args, 0), arg[B](args, 1))
	}, []reflect.Type{reflect.TypeFor[A](), reflect.TypeFor[B]()}, []func(any) ([]any, error){elems[A], elems[B]})
	register(def, opts)
	return &Task2[A, B, R]{def}
}

// NewTask3 registers a task of three inputs; see NewTask0.
func NewTask3[A, B, C, R any](name string, fn func(ctx context.Context, a A, b B, c C) (R, error), opts ...TaskOption) *Task3[A, B, C, R] {
	def := newDef[R](name, func(ctx context.Context, args []any) (any, error) {
		return fn(ctx, arg[A](args, 0), arg[B](args, 1), arg[C](args, 2))
	}, []reflect.Type{reflect.TypeFor[A](), reflect.TypeFor[B](), reflect.TypeFor[C]()},
		[]func(any) ([]any, error){elems[A], elems[B], elems[C]})
	register(def, opts)
	return &Task3[A, B, C, R]{def}
}

// Name returns the registered name.
func (t *Task0[R]) Name() string { return t.def.Name }

// Name returns the registered name.
func (t *Task1[A, R]) Name() string { return t.def.Name }

// Name returns the registered name.
func (t *Task2[A, B, R]) Name() string { return t.def.Name }

// Name returns the registered name.
func (t *Task3[A, B, C, R]) Name() string { return t.def.Name }

// Bind adds a run of the task to flow f and returns the handle to its result.
func (t *Task0[R]) Bind(f *Flow, opts ...BindOption) Ref[R] {
	return Ref[R]{refCore{f: f, arg: f.bind(t.def, false, nil, opts)}}
}

// Bind adds a run of the task to flow f with input a.
func (t *Task1[A, R]) Bind(f *Flow, a Ref[A], opts ...BindOption) Ref[R] {
	return Ref[R]{refCore{f: f, arg: f.bind(t.def, false, []input{{a.refCore, false}}, opts)}}
}

// Map adds a mapped run of the task to f: one child task run per element
// of the Each input (the result is the list of the children's results).
func (t *Task1[A, R]) Map(f *Flow, a MapArg[A], opts ...BindOption) Ref[[]R] {
	return Ref[[]R]{refCore{f: f, arg: f.bind(t.def, true, []input{input(a)}, opts)}}
}

// Bind adds a run of the task to flow f with inputs a and b.
func (t *Task2[A, B, R]) Bind(f *Flow, a Ref[A], b Ref[B], opts ...BindOption) Ref[R] {
	return Ref[R]{refCore{f: f, arg: f.bind(t.def, false, []input{{a.refCore, false}, {b.refCore, false}}, opts)}}
}

// Map adds a mapped run of the task to f: one child per element of the
// Each inputs, zipped (they must be equally long); Unmapped inputs are
// passed whole to every child.
func (t *Task2[A, B, R]) Map(f *Flow, a MapArg[A], b MapArg[B], opts ...BindOption) Ref[[]R] {
	return Ref[[]R]{refCore{f: f, arg: f.bind(t.def, true, []input{input(a), input(b)}, opts)}}
}

// Bind adds a run of the task to flow f with inputs a, b and c.
func (t *Task3[A, B, C, R]) Bind(f *Flow, a Ref[A], b Ref[B], c Ref[C], opts ...BindOption) Ref[R] {
	return Ref[R]{refCore{f: f, arg: f.bind(t.def, false, []input{{a.refCore, false}, {b.refCore, false}, {c.refCore, false}}, opts)}}
}

// Map adds a mapped run of the task to f; see Task2.Map.
func (t *Task3[A, B, C, R]) Map(f *Flow, a MapArg[A], b MapArg[B], c MapArg[C], opts ...BindOption) Ref[[]R] {
	return Ref[[]R]{refCore{f: f, arg: f.bind(t.def, true, []input{input(a), input(b), input(c)}, opts)}}
}
