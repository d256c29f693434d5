// Package e2e holds Reeve's end-to-end tests and benchmarks: a real server
// (on SQLite, and on PostgreSQL where the machine has it), real process
// agents and real flow programs (testdata/flows) run as child processes,
// driven through the API, the client and the CLI as a user would. It has
// no code of its own besides its tests.
package e2e
