// Command cur is a test program for the govulncheck oracle: built with the current toolchain and current
// modules, it uses the standard library's network and archive code.
package main

import (
	"archive/zip"
	"fmt"
	"net/http"
	"os"

	"golang.org/x/net/html"
)

func main() {
	if len(os.Args) > 3 {
		fmt.Println(http.ListenAndServe(os.Args[1], nil))
	}
	r, err := zip.OpenReader(os.Args[0])
	fmt.Println(r != nil, err)
	fmt.Println(html.EscapeString(os.Args[0]))
}
