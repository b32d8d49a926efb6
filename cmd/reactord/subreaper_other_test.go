//go:build !linux

package main

// becomeSubreaper is Linux's PR_SET_CHILD_SUBREAPER; elsewhere the upgrade tests skip.
func becomeSubreaper() {}
