package engine

import (
	"fmt"
	"strings"

	"github.com/reevehq/reeve/internal/state"
)

// Upstream is the state of one upstream task run, as a trigger sees it.
type Upstream struct {
	Task  string // upstream task run key, e.g. "extract" or "transform[3]"
	State state.State
}

// Trigger decides from the upstream states whether a task runs. The zero
// Trigger is all_successful. Fn is nil for built-in triggers.
type Trigger struct {
	Name string
	Fn   func(upstream []Upstream) bool
}

// Names of the built-in triggers.
const (
	AllSuccessful = "all_successful"
	AllFinished   = "all_finished"
	AnySuccessful = "any_successful"
	AnyFailed     = "any_failed"
	AllFailed     = "all_failed"
)

// BuiltinTriggers lists the built-in trigger names.
var BuiltinTriggers = []string{AllSuccessful, AllFinished, AnySuccessful, AnyFailed, AllFailed}

// builtinTrigger returns the predicate of a built-in trigger: given a kind,
// does it count; and whether all or any must count.
func builtinTrigger(name string) *builtin {
	switch name {
	case "", AllSuccessful:
		return &builtin{all: true, ok: state.Kind.Successful}
	case AllFinished:
		return &builtin{all: true, ok: state.Kind.Finished}
	case AnySuccessful:
		return &builtin{all: false, ok: state.Kind.Successful}
	case AnyFailed:
		return &builtin{all: false, ok: state.Kind.Failure}
	case AllFailed:
		return &builtin{all: true, ok: state.Kind.Failure}
	}
	return nil
}

type builtin struct {
	all bool
	ok  func(state.Kind) bool
}

var builtins = map[string]*builtin{}

func init() {
	for _, n := range BuiltinTriggers {
		builtins[n] = builtinTrigger(n)
	}
	builtins[""] = builtins[AllSuccessful]
}

// needsAll reports whether the trigger passes only if every upstream state
// passes a test (all_successful, all_finished, all_failed), so checking it
// on a part of the upstream tasks is a necessary condition.
func (t Trigger) needsAll() bool {
	if t.Fn != nil {
		return false
	}
	b := builtins[t.Name]
	return b != nil && b.all
}

// check evaluates the trigger; it returns "" when the task may run, or the
// TriggerFailed message. With no upstream tasks every trigger passes.
func (t Trigger) check(up []Upstream) string {
	if len(up) == 0 {
		return ""
	}
	name := t.Name
	if name == "" {
		name = AllSuccessful
	}
	if t.Fn != nil {
		if t.Fn(up) {
			return ""
		}
		return fmt.Sprintf("trigger %s not met by upstream states: %s", name, describe(up, func(state.Kind) bool { return true }))
	}
	b := builtins[name]
	if b == nil {
		return fmt.Sprintf("unknown trigger %q", name)
	}
	if b.all {
		for _, u := range up {
			if !b.ok(u.State.Kind) {
				return fmt.Sprintf("trigger %s not met: %s", name, describe(up, func(k state.Kind) bool { return !b.ok(k) }))
			}
		}
		return ""
	}
	for _, u := range up {
		if b.ok(u.State.Kind) {
			return ""
		}
	}
	return fmt.Sprintf("trigger %s not met: %s", name, describe(up, func(state.Kind) bool { return true }))
}

// describe lists up to three upstream task runs matching pick, with states.
func describe(up []Upstream, pick func(state.Kind) bool) string {
	var parts []string
	more := 0
	for _, u := range up {
		if !pick(u.State.Kind) {
			continue
		}
		if len(parts) == 3 {
			more++
			continue
		}
		parts = append(parts, fmt.Sprintf("upstream %q is %s", u.Task, u.State.Kind))
	}
	s := strings.Join(parts, ", ")
	if more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}
