// Package mmap holds the compiled BPF LSM programs for executable file mappings (mmap.c) and their bpf2go loader;
// bpf/ loads them.
package mmap

//go:generate go tool bpf2go -go-package mmap -target bpfel -no-global-types -cflags "-O2 -g -Wall -Werror" Mmap mmap.c -- -I../include
