package reeve_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/reevehq/reeve"
)

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("get flow run: %w", reeve.Errorf(reeve.CodeNotFound, "flow run %q does not exist", "abc"))
	if !errors.Is(err, reeve.ErrNotFound) || errors.Is(err, reeve.ErrConflict) {
		t.Errorf("errors.Is by code failed for %v", err)
	}
	if reeve.CodeOf(err) != reeve.CodeNotFound || reeve.CodeOf(errors.New("x")) != reeve.CodeInternal {
		t.Error("CodeOf")
	}
	if err.Error() != `get flow run: flow run "abc" does not exist` {
		t.Errorf("message %q", err)
	}
}
