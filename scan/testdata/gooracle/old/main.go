// Command old is a test program for the govulncheck oracle: built with an old toolchain against old x/text and
// x/net, it calls some of their vulnerable functions (language.Parse, html.Parse) and not others.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/idna"
	"golang.org/x/text/language"
)

func main() {
	tag, err := language.Parse(os.Args[0])
	fmt.Println(tag, err)
	doc, err := html.Parse(strings.NewReader("<p>" + os.Args[0]))
	fmt.Println(doc != nil, err)
	fmt.Println(idna.ToASCII(os.Args[0]))
}
