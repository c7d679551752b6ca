// Package exec holds the compiled sched_process_exec program (exec.c) and its bpf2go loader; bpf/ loads it.
package exec

//go:generate go tool bpf2go -go-package exec -target bpfel -no-global-types -cflags "-O2 -g -Wall -Werror" Exec exec.c -- -I../include
