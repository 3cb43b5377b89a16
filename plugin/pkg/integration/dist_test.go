package integration

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// What Grafana's plugin validator checks of a built plugin that can be checked without it (it
// cannot be installed on this machine: see plugin/README.md, "Validation"): the executable and its
// binaries (binarypermissions), the Go build manifest (gomanifest), and what the archive holds.

func distDir(t *testing.T) string {
	t.Helper()
	dist := filepath.Join(repoRoot(t), "plugin", "dist")
	if _, err := os.Stat(filepath.Join(dist, "go_plugin_build_manifest")); err != nil {
		t.Fatalf("the backend is not built (%v): run `go tool mage` in plugin/ (or `npm run build`)", err)
	}
	return dist
}

func TestDistHoldsTheBinariesGrafanaStarts(t *testing.T) {
	dist := distDir(t)
	raw, err := os.ReadFile(filepath.Join(dist, "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Executable string `json:"executable"`
		Backend    bool   `json:"backend"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil || !meta.Backend || meta.Executable != "gpx_livesync" {
		t.Fatalf("plugin.json backend %v executable %q (%v)", meta.Backend, meta.Executable, err)
	}
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		path := filepath.Join(dist, meta.Executable+"_linux_"+arch)
		info, err := os.Stat(path)
		if err != nil {
			t.Errorf("linux/%s: %v", arch, err)
			continue
		}
		if info.Mode().Perm()&0o111 != 0o111 {
			t.Errorf("%s is not executable by everyone: %v", filepath.Base(path), info.Mode())
		}
		f, err := elf.Open(path)
		if err != nil {
			t.Errorf("%s is not an ELF binary: %v", filepath.Base(path), err)
			continue
		}
		if f.Machine != machine {
			t.Errorf("%s is built for %v, want %v", filepath.Base(path), f.Machine, machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: Grafana's images may lack its libraries", filepath.Base(path))
			}
		}
		_ = f.Close()
	}
}

// The manifest lists every Go source of the backend with its sha256, as the validator compares it
// with the sources submitted beside the archive.
func TestGoBuildManifestMatchesTheSources(t *testing.T) {
	dist := distDir(t)
	file, err := os.Open(filepath.Join(dist, "go_plugin_build_manifest"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	listed := map[string]string{}
	for scanner := bufio.NewScanner(file); scanner.Scan(); {
		sum, path, ok := strings.Cut(scanner.Text(), ":")
		if !ok || len(sum) != 64 {
			t.Fatalf("manifest line %q is not <sha256>:<path>", scanner.Text())
		}
		listed[path] = sum
	}
	root := filepath.Join(repoRoot(t), "plugin")
	var sources []string
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "dist") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			rel, _ := filepath.Rel(root, path)
			sources = append(sources, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(sources)
	for _, rel := range sources {
		content, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		switch want, ok := listed[rel]; {
		case !ok:
			t.Errorf("%s is not in the manifest: rebuild (`go tool mage`)", rel)
		case want != hex.EncodeToString(sum[:]):
			t.Errorf("%s changed since the build: rebuild (`go tool mage`)", rel)
		}
		delete(listed, rel)
	}
	for rel := range listed {
		t.Errorf("the manifest lists %s, which is not a source", rel)
	}
}

// The archive holds the plugin and nothing else: no tests, sources or stray build output.
func TestDistHoldsOnlyThePlugin(t *testing.T) {
	dist := distDir(t)
	allowed := map[string]bool{
		"plugin.json": true, "module.js": true, "module.js.map": true, "README.md": true, "CHANGELOG.md": true,
		"LICENSE": true, "img/logo.svg": true, "go_plugin_build_manifest": true,
		"gpx_livesync_linux_amd64": true, "gpx_livesync_linux_arm64": true,
	}
	_ = filepath.WalkDir(dist, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dist, path)
		if !allowed[filepath.ToSlash(rel)] {
			t.Errorf("dist/%s is not part of the plugin", rel)
		}
		return nil
	})
}
