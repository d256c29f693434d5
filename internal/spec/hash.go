package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
)

// Hash returns the content hash of s: "sha256:" and 64 hex digits. It
// identifies a flow version.
//
// The hash is computed from the decoded spec, not from the text it was read
// from: neither formatting nor the order of keys in JSON objects, including
// those inside parameter defaults and constant input values, changes it,
// while a change to any field does. A zero SpecVersion hashes as Version,
// and an empty list as an absent one. A field added to the format later
// leaves the hashes of specs that do not set it unchanged.
//
// Hash is meant for valid specs. A spec that cannot be encoded at all (a NaN
// backoff or a default that is not JSON, which Validate rejects) still gets
// a stable hash, but not necessarily one distinct from other such specs.
func (s *Spec) Hash() string {
	b, err := canonicalJSON(s)
	if err != nil {
		b = []byte("unencodable spec: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// canonicalJSON encodes s in the canonical form Hash is computed over: the
// compact JSON of the struct, with raw JSON values re-encoded with the keys
// of their objects sorted.
func canonicalJSON(s *Spec) ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	c := *s
	if c.SpecVersion == 0 {
		c.SpecVersion = Version
	}
	if c.Tasks == nil {
		c.Tasks = []Task{} // "tasks" is written even when empty
	}
	var err error
	c.Parameters = slices.Clone(s.Parameters)
	for i := range c.Parameters {
		if c.Parameters[i].Default, err = canonicalValue(c.Parameters[i].Default); err != nil {
			return nil, err
		}
	}
	c.Tasks = slices.Clone(c.Tasks)
	for i := range c.Tasks {
		inputs := slices.Clone(c.Tasks[i].Inputs)
		for j := range inputs {
			if inputs[j].Value, err = canonicalValue(inputs[j].Value); err != nil {
				return nil, err
			}
		}
		c.Tasks[i].Inputs = inputs
	}
	return json.Marshal(&c)
}

// canonicalValue re-encodes a raw JSON value through any, which sorts the
// keys of objects; numbers keep their literal text.
func canonicalValue(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("value is not valid JSON: %s", abbrev(raw))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
