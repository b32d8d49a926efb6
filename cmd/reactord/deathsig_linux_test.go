package main

import (
	"os/exec"

	"golang.org/x/sys/unix"
)

// dieWithTest asks the kernel to SIGKILL cmd's process when the test process dies (a test that
// panics or times out must not leave an upstream server behind holding its port).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
}
