package ui

// The live stream's tests write a run's task runs within milliseconds and
// check that a resumed stream sends none of what came before its cursor,
// so the whole package runs without the slack (liveSlack, which only ever
// makes a resumed stream resend more, never less).
func init() { liveSlack = 0 }
