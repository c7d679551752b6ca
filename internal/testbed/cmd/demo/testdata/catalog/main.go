// Command catalog is the Go service of `make demo`'s shop/api pod. The demo builds it with go1.22.0 against old
// x/text and x/net, whose advisories name many functions: it calls two of them (language.ParseAcceptLanguage,
// html.Parse) and none of the others, so that some of its findings are reachable and most are not. Then it waits for SIGTERM.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/net/html"
	"golang.org/x/text/language"
)

func main() {
	tags, _, err := language.ParseAcceptLanguage("fr-CH, fr;q=0.9, en;q=0.8")
	fmt.Println("catalog: languages", tags, err)
	doc, err := html.Parse(strings.NewReader("<p>catalog</p>"))
	fmt.Println("catalog: page parsed", doc != nil, err)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
