//go:build mage

// The backend's build, with the plugin SDK's mage targets: `go tool mage` from plugin/ builds
// dist/gpx_livesync_linux_amd64 and dist/gpx_livesync_linux_arm64 (the executable named in
// src/plugin.json), statically linked, with the SDK's build info and the build manifest Grafana's
// plugin validator checks.
package main

import (
	"github.com/grafana/grafana-plugin-sdk-go/build"
	"github.com/magefile/mage/mg"
)

// Default is what a bare `go tool mage` runs.
var Default = Backend

// Backend builds the Linux binaries Grafana runs: amd64 and arm64.
func Backend() {
	b := build.Build{}
	mg.Deps(b.Linux, b.LinuxARM64)
}

// All builds every platform the SDK supports (Linux, Windows, macOS; amd64 and arm).
func All() {
	build.BuildAll()
}
