//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "floor: measures Linux system calls; run it on Linux")
	os.Exit(2)
}
