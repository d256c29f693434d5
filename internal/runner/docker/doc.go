// Package docker is the runner of the Docker agent: it runs each flow run
// as a container of the flow's image (storage kind "docker") on a Docker
// engine, through the engine's API (DOCKER_HOST, or the default socket).
//
// # Containers
//
// A run's container is named "reeve-RUN-ATTEMPT" and runs the image's
// entrypoint, the flow program, with the command `execute` and the
// environment contract of package runner (REEVE_API_URL, REEVE_API_TOKEN,
// REEVE_FLOW_RUN_ID, on top of the run configuration's variables, on top of
// the agent's own, Config.Env: a container gets none of the agent's
// environment otherwise). The run
// configuration's CPU ("500m", "2") and memory ("512Mi", "1Gi") become the
// container's limits (memory without swap on top), and its platform
// ("linux/arm64") the variant pulled and run. The agent's Network and
// Volumes apply to every container.
//
// The runner follows the container's logs into the run's output, line by
// line, waits until it stops, says how it ended (a container the kernel
// killed for memory says so, naming its limit; an exit status 128+N is
// signal N), and removes it. Stop sends SIGTERM to the container's main
// process, then SIGKILL after the grace period. The main process is PID 1
// of the container, which ignores signals it has no handler for: a flow
// program that does not handle SIGTERM is killed when the grace ends.
//
// # Labels, and restarts
//
// Every container carries the labels dev.reeve.agent (the agent's name),
// dev.reeve.flow-run-id, dev.reeve.attempt and dev.reeve.managed-by=reeve,
// and dev.reeve.api-relay when the runner relays its server address (see
// below).
// Containers keep running when the agent stops. An agent that restarts
// finds its containers again, from its saved records ([Runner.Recover]) or,
// without them, by label ([Runner.Find], which also removes the containers
// of runs that ended while the agent was away) and follows their output
// from then on.
//
// # Pull policies
//
// Images are pulled with the credentials of the agent user's Docker
// configuration (~/.docker/config.json or $DOCKER_CONFIG, and its
// credential helpers), so `docker login REGISTRY` on the agent's machine
// is all a private registry needs. [PullMissing], the default, pulls only
// images the engine lacks (a digest-pinned image never changes);
// [PullAlways] pulls before every run; [PullNever] never pulls, and a run
// whose image is absent fails. The run's log says when a pull begins, and
// how long it took. A pull that fails, or that takes longer than
// Config.PullTimeout (10 minutes by default), fails the run at once, with a
// message that says why and what to do.
//
// # An engine that goes away
//
// New fails when the engine does not answer. Later, Start fails with an
// error that wraps [runner.ErrUnavailable] when the engine cannot be
// reached (or stopped answering during the call), and [Runner.Check] says
// whether it answers again, so that the agent stops claiming runs
// meanwhile.
//
// # The server's address
//
// A container cannot reach the agent machine's loopback address: inside
// the container, 127.0.0.1 is the container itself. When the server URL of
// a run is loopback (127.0.0.0/8, ::1, localhost) and the network is not
// "host", the runner gives the container the gateway of its Docker network
// instead (the agent machine's address on that network, e.g.
// http://172.17.0.1:4200 for http://127.0.0.1:4200). Unless the server
// itself listens there (on all addresses), the runner relays that address
// to the server: a TCP relay of the agent, one per address, that lives
// until [Runner.Close]. The relay binds the same port as the server, so the
// address stays the same when the agent restarts, and Recover starts the
// relay of a container it recovers again, so that it keeps working. On
// Linux the relay's socket has SO_REUSEPORT, so the agents of one machine
// (of one user) each relay the address; the kernel spreads new
// connections over their relays, so when one agent exits the connections
// it relayed are cut (the programs retry them) and new ones go to the
// others. A listen that fails because the address is in use means the
// server holds it. The run's log says which. An https loopback server
// URL fails the run at once (no address but loopback would match its
// certificate): give --api-url.
// Config.APIURL (the agent's --api-url) replaces all this: containers get
// it verbatim. With Docker Desktop, whose engine runs in a virtual machine,
// the gateway is not on the agent's machine: give --api-url
// http://host.docker.internal:PORT.
package docker
