package ui

// The live stream's tests write a run's task runs within milliseconds and
// check that a resumed stream sends none of what came before its cursor.
func init() { liveSlack = 0 }
