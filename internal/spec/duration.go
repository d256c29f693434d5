package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Duration is a time.Duration that is written to JSON as a Go duration
// string, such as "1.5s" or "1h0m0s", so that a spec reads well. When
// reading, it also accepts a JSON integer number of nanoseconds.
//
// The zero Duration means "not set" and is left out of a spec by omitempty.
// A negative Duration decodes, but Validate rejects it.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.String.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a JSON string in time.Duration.String form.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON reads a duration string accepted by time.ParseDuration, or
// an integer number of nanoseconds. A JSON null leaves d unchanged.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("invalid duration %s: %w", data, err)
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: write it like \"90s\" or \"1h30m\"", s)
		}
		*d = Duration(v)
		return nil
	default:
		v, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			return fmt.Errorf("invalid duration %s: write it as a string like \"90s\" or \"1h30m\", or as an integer number of nanoseconds", data)
		}
		*d = Duration(v)
		return nil
	}
}
