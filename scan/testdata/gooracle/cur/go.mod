module example.com/gooracle/cur

go 1.26

require golang.org/x/net v0.58.0
