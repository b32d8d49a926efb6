//go:build !linux

package main

import "os/exec"

// dieWithTest is Linux's parent-death signal; elsewhere the test's cleanup alone stops cmd.
func dieWithTest(cmd *exec.Cmd) {}
