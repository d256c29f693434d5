package spec

import (
	"slices"
)

// TaskByID returns the task of s with the given ID, or nil if there is none.
// The result points into s.Tasks.
func (s *Spec) TaskByID(id string) *Task {
	for i := range s.Tasks {
		if s.Tasks[i].ID == id {
			return &s.Tasks[i]
		}
	}
	return nil
}

// TaskNames returns the registered task names that s uses, sorted, each
// once: what a program must register to run the flow.
func (s *Spec) TaskNames() []string {
	names := make([]string, 0, len(s.Tasks))
	for _, t := range s.Tasks {
		names = append(names, t.Task)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
