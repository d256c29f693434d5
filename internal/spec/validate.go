package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/adhocore/gronx"
)

var (
	// namePattern is what a flow name must match; it is also a safe file name.
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	// envNamePattern is what secret and environment variable names must match.
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// paramTypes are the JSON types a Parameter may declare.
var paramTypes = []string{"string", "integer", "number", "boolean", "array", "object", "any"}

// Validate checks the structure of s and returns every problem it finds,
// joined with errors.Join, so that a user can fix them all at once. Each
// problem is a line that names the spec and the task, input, parameter,
// secret or option at fault, and says what to do; each matches ErrInvalid.
//
// A zero SpecVersion is accepted and means Version. Validate checks what
// can be known from the spec alone; whether the named tasks exist is for
// the program that loads it.
func (s *Spec) Validate() error {
	if s == nil {
		return invalidf("spec: nil spec")
	}
	p := &problems{spec: specLabel(s.Name)}

	switch {
	case s.Name == "":
		p.addf("name is empty: set it to the flow's name")
	case !namePattern.MatchString(s.Name):
		p.addf("name %q is not valid: use letters, digits, '_', '.' and '-', starting with a letter or digit", s.Name)
	}
	if s.SpecVersion < 0 || s.SpecVersion > Version {
		p.addf("spec_version %d is not valid: this Reeve writes spec_version %d", s.SpecVersion, Version)
	}
	p.checkList("", "labels", "label", s.Labels)

	params := p.checkParameters(s.Parameters)
	ids := p.checkTasks(s.Tasks, params)
	for _, id := range s.ReferenceTasks {
		if _, ok := ids[id]; !ok {
			p.addf("reference_tasks: unknown task %q: list IDs of tasks of this flow", id)
		}
	}
	for _, c := range s.cycles(ids) {
		p.addf("cycle: %s: remove one of these inputs or after entries", strings.Join(c, " → "))
	}

	secrets := make([]string, len(s.Secrets))
	for i, sec := range s.Secrets {
		secrets[i] = sec.Name
	}
	p.checkVarNames("secrets", "secret", secrets)
	env := make([]string, len(s.Env))
	for i, e := range s.Env {
		env[i] = e.Name
	}
	p.checkVarNames("env", "environment variable", env)

	if sch := s.Schedule; sch != nil {
		switch {
		case sch.Cron == "":
			p.addf("schedule: cron is empty: set a cron expression like \"30 2 * * *\", or a descriptor like @daily")
		case !gronx.IsValid(sch.Cron):
			p.addf("schedule: cron %q is not valid: use five fields (minute hour day-of-month month day-of-week) like \"30 2 * * *\", or a descriptor like @daily", sch.Cron)
		}
		if tz := sch.Timezone; tz != "" {
			if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
				p.addf("schedule: timezone %q is not known: use an IANA name like \"Europe/Paris\", or leave it empty for UTC", tz)
			}
		}
	}
	return errors.Join(p.errs...)
}

// problems collects the problems Validate finds in one spec.
type problems struct {
	spec string // how messages name the spec, e.g. `spec "etl"`
	errs []error
}

// addf records a problem; the message is prefixed with the spec's name.
func (p *problems) addf(format string, args ...any) {
	p.errs = append(p.errs, invalidf("%s: %s", p.spec, fmt.Sprintf(format, args...)))
}

// checkList checks that a list of strings, such as labels or tags, has no
// empty or repeated entries. where, if not empty, is the context of the list
// in messages, ending in ": "; field is the JSON name of the list.
func (p *problems) checkList(where, field, what string, items []string) {
	seen := make(map[string]bool, len(items))
	for i, item := range items {
		switch {
		case item == "":
			p.addf("%s%s[%d] is empty: remove it", where, field, i)
		case seen[item]:
			p.addf("%s%s %q is listed twice: remove one", where, what, item)
		}
		seen[item] = true
	}
}

// checkVarNames checks the names of declared secrets or environment
// variables: non-empty, unique, and shaped like environment variable names.
func (p *problems) checkVarNames(field, what string, names []string) {
	seen := make(map[string]bool, len(names))
	for i, name := range names {
		switch {
		case name == "":
			p.addf("%s[%d]: name is empty: set it", field, i)
		case !envNamePattern.MatchString(name):
			p.addf("%s %q: name is not valid: use letters, digits and '_', not starting with a digit", what, name)
		case seen[name]:
			p.addf("%s %q is declared twice: remove one", what, name)
		}
		seen[name] = true
	}
}

// checkParameters checks the parameters and returns the set of their names.
func (p *problems) checkParameters(params []Parameter) map[string]bool {
	names := make(map[string]bool, len(params))
	for i, prm := range params {
		where := fmt.Sprintf("parameter %q", prm.Name)
		switch {
		case prm.Name == "":
			where = fmt.Sprintf("parameters[%d]", i)
			p.addf("%s: name is empty: set it", where)
		case names[prm.Name]:
			p.addf("%s is declared twice: rename or remove one", where)
		}
		names[prm.Name] = prm.Name != ""

		typeOK := slices.Contains(paramTypes, prm.Type)
		if !typeOK {
			p.addf("%s: type %q is not valid: use one of %s", where, prm.Type, strings.Join(paramTypes, ", "))
		}
		switch {
		case prm.Required && len(prm.Default) > 0:
			p.addf("%s is required and has a default: remove the default, or make it optional", where)
		case !prm.Required && len(prm.Default) == 0:
			p.addf("%s has no default and is not required: give it a default, or make it required", where)
		case len(prm.Default) > 0 && !json.Valid(prm.Default):
			p.addf("%s: default is not valid JSON: fix it", where)
		case len(prm.Default) > 0 && typeOK && !hasJSONType(prm.Default, prm.Type):
			p.addf("%s: default %s is not of type %s: fix the default or the type", where, abbrev(prm.Default), prm.Type)
		}
	}
	return names
}

// hasJSONType reports whether the valid JSON value raw is of the parameter
// type typ. An integer is also a number; "any" takes every value; null is
// accepted for every type, as Go writes nil slices, maps and pointers as null.
func hasJSONType(raw json.RawMessage, typ string) bool {
	raw = bytes.TrimSpace(raw)
	if typ == "any" {
		return true
	}
	var kind string
	switch raw[0] {
	case '"':
		kind = "string"
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	case 't', 'f':
		kind = "boolean"
	case 'n':
		return true
	default:
		kind = "integer"
		if bytes.ContainsAny(raw, ".eE") {
			kind = "number"
		}
	}
	return kind == typ || (kind == "integer" && typ == "number")
}

// abbrev returns raw for an error message, shortened if it is long.
func abbrev(raw json.RawMessage) string {
	const max = 40
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}

// checkTasks checks the tasks and returns the index of each task ID.
func (p *problems) checkTasks(tasks []Task, params map[string]bool) map[string]int {
	if len(tasks) == 0 {
		p.addf("has no tasks: add at least one")
	}
	ids := make(map[string]int, len(tasks))
	for i, t := range tasks {
		if _, dup := ids[t.ID]; dup {
			p.addf("task ID %q is used twice: give each task its own ID", t.ID)
		} else if t.ID == "" {
			p.addf("tasks[%d]: id is empty: set it", i)
		} else {
			ids[t.ID] = i
		}
	}

	for i, t := range tasks {
		where := fmt.Sprintf("task %q", t.ID)
		if t.ID == "" {
			where = fmt.Sprintf("tasks[%d]", i)
		}
		if t.Task == "" {
			p.addf("%s: task is empty: set it to the name the task function is registered under", where)
		}
		mapped := 0
		for j, in := range t.Inputs {
			p.checkInput(fmt.Sprintf("%s: inputs[%d]", where, j), in, ids, params)
			if in.Each {
				mapped++
				if !t.Mapped {
					p.addf("%s: inputs[%d]: each is set but the task is not mapped: set mapped on the task, or remove each", where, j)
				}
			}
		}
		if t.Mapped && mapped == 0 {
			p.addf("%s is mapped but no input has each set: set each on the inputs to map over", where)
		}
		for j, id := range t.After {
			switch _, known := ids[id]; {
			case id == "":
				p.addf("%s: after[%d] is empty: remove it", where, j)
			case id == t.ID:
				p.addf("%s: after lists the task itself: remove it", where)
			case !known:
				p.addf("%s: after: unknown task %q: use the ID of a task of this flow", where, id)
			}
		}
		p.checkOptions(where+": options", t.Options)
	}
	return ids
}

// checkInput checks one input of a task; where names it in messages.
func (p *problems) checkInput(where string, in Input, ids map[string]int, params map[string]bool) {
	set := map[string]bool{"task": in.Task != "", "param": in.Param != "", "value": len(in.Value) > 0}
	var field string // the one field the kind uses
	switch in.Kind {
	case InputTask:
		field = "task"
		if _, ok := ids[in.Task]; in.Task != "" && !ok {
			p.addf("%s: unknown task %q: use the ID of a task of this flow", where, in.Task)
		}
	case InputParam:
		field = "param"
		if in.Param != "" && !params[in.Param] {
			p.addf("%s: unknown parameter %q: declare it in parameters, or use a declared one", where, in.Param)
		}
	case InputConst:
		field = "value"
		if len(in.Value) > 0 && !json.Valid(in.Value) {
			p.addf("%s: value is not valid JSON: fix it", where)
		}
	default:
		p.addf("%s: kind %q is not valid: use %s, %s or %s", where, in.Kind, InputTask, InputParam, InputConst)
		return
	}
	if !set[field] {
		p.addf("%s: an input of kind %s needs %q: set it", where, in.Kind, field)
	}
	for _, f := range []string{"task", "param", "value"} {
		if f != field && set[f] {
			p.addf("%s: an input of kind %s takes no %q: remove it", where, in.Kind, f)
		}
	}
}

// checkOptions checks the options of a task; where names them in messages.
func (p *problems) checkOptions(where string, o Options) {
	if o.Retries < 0 {
		p.addf("%s: retries is %d: it cannot be negative", where, o.Retries)
	}
	for _, d := range []struct {
		field string
		value Duration
	}{
		{"retry_delay", o.RetryDelay},
		{"max_retry_delay", o.MaxRetryDelay},
		{"timeout", o.Timeout},
		{"cache_for", o.CacheFor},
	} {
		if d.value < 0 {
			p.addf("%s: %s is %s: it cannot be negative", where, d.field, d.value)
		}
	}
	if !(o.Backoff >= 0) || math.IsInf(o.Backoff, 0) {
		p.addf("%s: backoff is %v: use a finite multiplier, not negative (0 or 1 means a constant delay)", where, o.Backoff)
	}
	p.checkList(where+": ", "tags", "tag", o.Tags)
}

// cycles returns the cycles of the graph whose edges are task inputs and
// after entries, as lists of task IDs in the direction data flows, each
// starting and ending at the same task. They are found by a depth-first
// search that starts from the tasks in spec order and follows each task's
// upstream tasks in the order of its inputs, then of after; each edge that
// closes a cycle in that search yields one. Edges to unknown tasks, and
// after entries naming the task itself, are left out: Validate reports them
// on their own.
func (s *Spec) cycles(ids map[string]int) [][]string {
	upstream := make([][]int, len(s.Tasks))
	for i, t := range s.Tasks {
		seen := make(map[int]bool)
		add := func(id string) {
			if u, ok := ids[id]; ok && !seen[u] {
				seen[u] = true
				upstream[i] = append(upstream[i], u)
			}
		}
		for _, in := range t.Inputs {
			if in.Kind == InputTask {
				add(in.Task)
			}
		}
		for _, id := range t.After {
			if id != t.ID {
				add(id)
			}
		}
	}

	const (
		unvisited = iota
		onPath    // being visited: on the current path of the search
		done
	)
	state := make([]int, len(s.Tasks))
	var path []int
	var found [][]string
	var visit func(i int)
	visit = func(i int) {
		state[i] = onPath
		path = append(path, i)
		for _, u := range upstream[i] {
			switch state[u] {
			case unvisited:
				visit(u)
			case onPath:
				// path holds u, then tasks that each depend on the next,
				// down to i, which depends on u.
				start := len(path) - 1
				for path[start] != u {
					start--
				}
				cycle := []string{s.Tasks[u].ID}
				for k := len(path) - 1; k > start; k-- {
					cycle = append(cycle, s.Tasks[path[k]].ID)
				}
				found = append(found, append(cycle, s.Tasks[u].ID))
			}
		}
		path = path[:len(path)-1]
		state[i] = done
	}
	for i := range s.Tasks {
		if state[i] == unvisited {
			visit(i)
		}
	}
	return found
}
