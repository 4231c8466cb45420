//go:build !cuda

package main

// cudaBuild: this binary measures on the CPU.
const cudaBuild = false
