package reeve_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left running at
// the end: worker pools, timers and abandoned tasks must all wind down.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
