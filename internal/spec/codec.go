package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Decode reads a spec document and validates it.
//
// Decoding is strict: a field this version of Reeve does not know is an error
// that names it. A document without a spec_version is not a Reeve flow spec,
// and one whose spec_version is above Version was written by a newer Reeve;
// both are errors that say so. The decoded spec is then checked with
// Validate, and every problem it finds is returned. Parameter defaults and
// constant input values are compacted, so a spec written by Encode reads
// back equal to the original.
//
// Every error Decode returns matches ErrInvalid. Decode never panics.
func Decode(data []byte) (*Spec, error) {
	// Look at the version first, leniently, so that a spec from a newer Reeve
	// is reported as such rather than as having fields this one lacks.
	var head struct {
		SpecVersion json.RawMessage `json:"spec_version"`
		Name        json.RawMessage `json:"name"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		if syntax, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, invalidf("spec: invalid JSON at byte %d: %w", syntax.Offset, err)
		}
		return nil, invalidf("spec: the document is not a Reeve flow spec: it is not a JSON object")
	}
	var name string
	_ = json.Unmarshal(head.Name, &name) // best effort, for error messages only
	version := 0
	if len(head.SpecVersion) > 0 && string(head.SpecVersion) != "null" {
		if err := json.Unmarshal(head.SpecVersion, &version); err != nil {
			return nil, invalidf("%s: spec_version %s is not an integer", specLabel(name), head.SpecVersion)
		}
	}
	if err := checkVersion(name, version); err != nil {
		return nil, err
	}

	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		if name == "" {
			name = s.Name
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return nil, invalidf("%s: %w: remove it or fix its spelling", specLabel(name), err)
		}
		return nil, invalidf("%s: %w", specLabel(name), err)
	}
	// JSON object keys match fields case-insensitively, so the version the
	// struct got may differ from the one looked at above.
	if err := checkVersion(s.Name, s.SpecVersion); err != nil {
		return nil, err
	}
	s.compactValues()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// checkVersion reports whether this Reeve can read a spec of the given
// spec_version.
func checkVersion(name string, version int) error {
	switch {
	case version == 0:
		return invalidf("%s: the document is not a Reeve flow spec: it has no spec_version", specLabel(name))
	case version < 0:
		return invalidf("%s: spec_version %d is not valid: this Reeve reads spec_version 1 to %d", specLabel(name), version, Version)
	case version > Version:
		return invalidf("%s was written by a newer Reeve (spec_version %d; this Reeve reads up to %d): upgrade Reeve to use it",
			specLabel(name), version, Version)
	}
	return nil
}

// compactValues removes insignificant white space from the raw JSON values
// of s, which the indentation of Encode would otherwise change.
func (s *Spec) compactValues() {
	for i := range s.Parameters {
		s.Parameters[i].Default = compactJSON(s.Parameters[i].Default)
	}
	for i := range s.Tasks {
		for j := range s.Tasks[i].Inputs {
			s.Tasks[i].Inputs[j].Value = compactJSON(s.Tasks[i].Inputs[j].Value)
		}
	}
}

// compactJSON returns raw compacted, or raw itself if it is empty or not
// valid JSON.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

// specLabel names a spec at the start of an error message.
func specLabel(name string) string {
	if name == "" {
		return "spec"
	}
	return fmt.Sprintf("spec %q", name)
}

// Encode writes s as indented JSON (two spaces, with a trailing newline),
// the form WriteFile stores and Decode reads. A zero SpecVersion is written
// as Version. Encode does not validate s; s itself is not modified.
func Encode(s *Spec) ([]byte, error) {
	if s == nil {
		return nil, errors.New("spec: encode: nil spec")
	}
	c := *s
	if c.SpecVersion == 0 {
		c.SpecVersion = Version
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("%s: encode: %w", specLabel(s.Name), err)
	}
	return buf.Bytes(), nil
}
