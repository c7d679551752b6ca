// Command pause is the entry point of the testbed's pause and hostile images: it
// keeps a container alive without a shell or any other binary in the image, and
// exits 0 on SIGTERM or SIGINT so that stopping a test pod is quick and clean.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
