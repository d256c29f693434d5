package sqlite

import (
	"database/sql/driver"
	"fmt"
	"strings"

	"modernc.org/sqlite"
)

// foldFunc is the SQL name of the function that folds text for the text
// filter (store.FlowRunFilter.Text): SQLite's own lower() folds only ASCII
// letters, so "Über-load" would not be found by "über".
const foldFunc = "reeve_fold"

func init() {
	// Every connection the "sqlite" driver opens from now on has the
	// function; Open runs after package initialisation.
	if err := sqlite.RegisterDeterministicScalarFunction(foldFunc, 1, foldText); err != nil {
		panic(fmt.Sprintf("sqlite: register %s: %v", foldFunc, err))
	}
}

// foldText is reeve_fold(x): x with Go's strings.ToLower applied, the fold
// the store applies to the needle, so that both sides compare alike. NULL
// stays NULL; a blob is folded as text.
func foldText(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case string:
		return strings.ToLower(v), nil
	case []byte:
		return strings.ToLower(string(v)), nil
	case nil:
		return nil, nil
	default:
		return v, nil
	}
}
