// Command app is the workload of the testbed's distroless image: a static
// binary that announces itself (so tests can see it started) and then waits
// for SIGTERM or SIGINT, like a real service would.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("rootscan testbed app started (pid %d, uid %d)\n", os.Getpid(), os.Getuid())
	s := <-sig
	fmt.Printf("rootscan testbed app stopping on %v\n", s)
}
