//go:build cuda

package main

// cudaBuild: this binary is streamqc-cuda.
const cudaBuild = true
