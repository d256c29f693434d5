package store

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxResultKey is the longest result key, in bytes.
const MaxResultKey = 1024

// CheckResultKey checks the key of a result in the server's result store:
// not empty, at most MaxResultKey bytes of UTF-8 without control
// characters, relative (no leading "/") and without ".." segments; else
// ErrInvalid. These are the keys result stores accept everywhere, such as
// "etl/0195f3.../transform/3.json".
func CheckResultKey(key string) error {
	reason := ""
	switch {
	case key == "":
		reason = "it is empty"
	case len(key) > MaxResultKey:
		return invalid("result key %.40q... is %d bytes long: use at most %d", key, len(key), MaxResultKey)
	case !utf8.ValidString(key):
		reason = "it is not valid UTF-8"
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		reason = "it contains a control character"
	case strings.HasPrefix(key, "/"):
		reason = `it starts with "/"`
	case key == ".." || strings.HasPrefix(key, "../") || strings.HasSuffix(key, "/..") || strings.Contains(key, "/../"):
		reason = `it has a ".." segment`
	}
	if reason != "" {
		return invalid("result key %q is not valid: %s; keys are relative slash-separated paths such as \"flow/run/task.json\"", key, reason)
	}
	return nil
}
