package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ResolveParams checks parameter values given for a run of the flow (a JSON
// object, or empty for none) against the spec's parameters and returns every
// parameter's value: the given one, or the default. Unknown names, missing
// required parameters and values of the wrong JSON type are reported
// together, by name, as one ErrInvalid error.
func (s *Spec) ResolveParams(given json.RawMessage) (map[string]json.RawMessage, error) {
	values := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(given)) > 0 && !bytes.Equal(bytes.TrimSpace(given), []byte("null")) {
		if err := json.Unmarshal(given, &values); err != nil {
			return nil, invalidf("parameters must be a JSON object of name to value: %v", err)
		}
	}
	known := make(map[string]bool, len(s.Parameters))
	out := make(map[string]json.RawMessage, len(s.Parameters))
	var problems []string
	for _, p := range s.Parameters {
		known[p.Name] = true
		v, ok := values[p.Name]
		switch {
		case !ok && p.Required:
			problems = append(problems, fmt.Sprintf("parameter %q (%s) is required: give a value", p.Name, p.Type))
		case !ok:
			out[p.Name] = compactJSON(p.Default)
		case !hasJSONType(v, p.Type):
			problems = append(problems, fmt.Sprintf("parameter %q must be of type %s, not %s", p.Name, p.Type, abbrev(v)))
		default:
			out[p.Name] = compactJSON(v)
		}
	}
	var unknown []string
	for name := range values {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		have := make([]string, 0, len(s.Parameters))
		for _, p := range s.Parameters {
			have = append(have, p.Name)
		}
		hint := "it takes no parameters"
		if len(have) > 0 {
			hint = "it takes " + strings.Join(have, ", ")
		}
		problems = append(problems, fmt.Sprintf("flow %q has no parameter %q: %s", s.Name, name, hint))
	}
	if len(problems) > 0 {
		return nil, invalidf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}
