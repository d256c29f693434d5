package ui

// SetMaxBulkRuns sets the bound of a bulk action for a test and returns
// what restores it.
func SetMaxBulkRuns(n int) func() {
	old := maxBulkRuns
	maxBulkRuns = n
	return func() { maxBulkRuns = old }
}
