package result

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidKey is returned, wrapped, for a key no store accepts.
var ErrInvalidKey = errors.New("invalid result key")

// CheckKey reports whether key can name a result. Keys are relative,
// slash-separated paths such as "etl/0195f3.../extract.json": not empty, not
// absolute, without empty, "." or ".." segments, backslashes or control
// characters, and not ending in ".attrs" (file stores keep metadata under
// that suffix). The same rules hold for every store, so a key that works on
// mem:// in a test works on file:// and s3:// in production. The error wraps
// [ErrInvalidKey].
func CheckKey(key string) error {
	reason := keyProblem(key)
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w %q: %s; keys are relative slash-separated paths such as \"flow/run/task.json\"", ErrInvalidKey, key, reason)
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "it is empty"
	case !utf8.ValidString(key):
		return "it is not valid UTF-8"
	case strings.HasPrefix(key, "/"):
		return "it is absolute"
	case strings.Contains(key, `\`):
		return `it contains a backslash; separate segments with "/"`
	case strings.HasSuffix(key, ".attrs"):
		return `it ends in ".attrs", which file stores reserve for metadata`
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		return "it contains a control character"
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return `it has an empty segment ("//" or a trailing "/")`
		case ".":
			return `it has a "." segment`
		case "..":
			return `it has a ".." segment`
		}
	}
	return ""
}
