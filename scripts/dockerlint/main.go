// Command dockerlint checks dettrain's Dockerfile without a Docker engine.
// scripts/dockerlint.sh runs it; docs/DOCKER.md says what it proves and what
// it cannot.
//
//	go run . [-root DIR] [-experimental]   lint ../../Dockerfile (the default root is ../..)
//	go run . -apt-packages STAGE            print the packages that apt-get install names in STAGE
//	                                        (with the stage's ARG defaults: the build's without --build-arg)
//
// The checks, in order:
//
//  1. buildkit's own Dockerfile checks, the ones `docker build --check` runs
//     (dockerfile2llb.DockerfileLint), over every stage. Base images are not
//     pulled: a stand-in image config (Linux, the build platform, a PATH) answers
//     for each FROM, so checks about a base image's contents cannot fire.
//  2. dettrain's structure: each COPY --from=STAGE source is a file that a
//     `go build -o` of that stage writes (paths resolved against WORKDIR); the
//     build stage builds ./cmd/dettrain; the last stage runs as a non-root
//     USER, its ENTRYPOINT is the copied binary (by name on PATH or by path),
//     and it declares the /data and /runs volumes.
//  3. the build context as .dockerignore leaves it: every file that `go build
//     ./cmd/dettrain` reads from the main module (Go, cgo and embedded files,
//     go.mod, go.sum) and every COPY source from the context is sent, and the
//     context's size is printed.
//
// The exit status is 1 when any check fails, 2 on bad usage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	root := flag.String("root", "../..", "the build context: the repository root holding Dockerfile and .dockerignore")
	aptStage := flag.String("apt-packages", "", "print the packages `STAGE`'s RUN apt-get install commands name, one a line, and exit")
	experimental := flag.Bool("experimental", false, "also run buildkit's experimental checks")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: dockerlint [-root DIR] [-experimental] | [-root DIR] -apt-packages STAGE\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	file := filepath.Join(*root, "Dockerfile")
	dt, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerlint:", err)
		os.Exit(2)
	}
	stages, err := parseStages(dt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dockerlint: %s: %v\n", file, err)
		os.Exit(1)
	}

	if *aptStage != "" {
		st := findStage(stages, *aptStage)
		if st == nil {
			fmt.Fprintf(os.Stderr, "dockerlint: %s has no stage %q\n", file, *aptStage)
			os.Exit(2)
		}
		for _, p := range aptPackages(st) {
			fmt.Println(p)
		}
		return
	}

	failed := false
	report := func(check string, problems []string) {
		if len(problems) == 0 {
			fmt.Printf("dockerlint: %s: ok\n", check)
			return
		}
		failed = true
		for _, p := range problems {
			fmt.Printf("dockerlint: %s: %s\n", check, p)
		}
	}
	lintProblems, err := buildkitLint(file, dt, *experimental)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerlint:", err)
		os.Exit(1)
	}
	report("buildkit checks (docker build --check)", lintProblems)
	report("structure", structure(stages))
	ctxProblems, size, n := buildContext(*root, stages)
	report("build context", ctxProblems)
	fmt.Printf("dockerlint: build context after .dockerignore: %d files, %.1f KiB\n", n, float64(size)/1024)
	if failed {
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------
// 1. buildkit's checks

// standInResolver answers buildkit's base-image lookups without a registry: a
// Linux image of the requested platform with one layer and a PATH.
type standInResolver struct{}

func (standInResolver) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	p := ocispecs.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	cfg := map[string]any{
		"os":           p.OS,
		"architecture": p.Architecture,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest.FromString(ref).String()}},
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	}
	dt, err := json.Marshal(cfg)
	return ref, "", dt, err
}

// buildkitLint runs dockerfile2llb.DockerfileLint over every stage and
// returns its warnings and error as printable problems.
func buildkitLint(file string, dt []byte, experimental bool) ([]string, error) {
	ctx := context.Background()
	if experimental {
		dt = append([]byte("# check=experimental=all\n"), dt...)
	}
	// The source map ties warnings to lines; its definition stands for the
	// Dockerfile's own (local) source, as dockerui's does.
	src := llb.Local("dockerfile")
	def, err := src.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	sm := llb.NewSourceMap(&src, file, "Dockerfile", dt)
	sm.Definition = def
	opt := dockerfile2llb.ConvertOpt{SourceMap: sm, MetaResolver: standInResolver{}}
	res, err := dockerfile2llb.DockerfileLint(ctx, dt, opt)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
			if experimental {
				line-- // the directive added above
			}
		}
		out = append(out, fmt.Sprintf("%s:%d: %s: %s (%s)", file, line, w.RuleName, w.Detail, w.URL))
	}
	if res.Error != nil {
		out = append(out, fmt.Sprintf("%s: error: %s", file, res.Error.Message))
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// 2. structure

// stage is one FROM ... section with its meta ARG defaults expanded.
type stage struct {
	instructions.Stage
	index int
}

func parseStages(dt []byte) ([]*stage, error) {
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return nil, err
	}
	sts, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, err
	}
	if len(sts) == 0 {
		return nil, errors.New("no FROM")
	}
	out := make([]*stage, len(sts))
	for i := range sts {
		out[i] = &stage{Stage: sts[i], index: i}
	}
	return out, nil
}

func findStage(stages []*stage, name string) *stage {
	for _, s := range stages {
		if strings.EqualFold(s.Name, name) || fmt.Sprint(s.index) == name {
			return s
		}
	}
	return nil
}

func line(c instructions.Command) int {
	if l, ok := c.(interface{ Location() []parser.Range }); ok && len(l.Location()) > 0 {
		return l.Location()[0].Start.Line
	}
	return 0
}

// words splits a shell command line into words and separators: a good
// enough reading of RUN lines for the commands looked for here (go build,
// apt-get install), which take plain words. env (NAME=value) expands
// $NAME and ${NAME}; other variables expand to nothing.
func words(cmd string, env []string) []string {
	lex := shell.NewLex('\\')
	var out []string
	for _, part := range splitOps(cmd) {
		if isOp(part) {
			out = append(out, part)
			continue
		}
		ws, err := lex.ProcessWords(part, shell.EnvsFromSlice(env))
		if err != nil {
			ws = strings.Fields(part)
		}
		out = append(out, ws...)
	}
	return out
}

var ops = []string{"&&", "||", ";", "|", "(", ")", "{", "}", "\n"}

func isOp(s string) bool { return slices.Contains(ops, s) }

// splitOps cuts cmd at the shell operators outside quotes; the operators are
// kept as their own elements.
func splitOps(cmd string) []string {
	var out []string
	var cur strings.Builder
	var quote byte
	flush := func() {
		if strings.TrimSpace(cur.String()) != "" {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote = c
			cur.WriteByte(c)
		case c == '\\' && i+1 < len(cmd):
			cur.WriteByte(c)
			cur.WriteByte(cmd[i+1])
			i++
		case strings.HasPrefix(cmd[i:], "${") && strings.IndexByte(cmd[i:], '}') > 0:
			// ${NAME}: a variable, not a group's braces.
			j := i + strings.IndexByte(cmd[i:], '}')
			cur.WriteString(cmd[i : j+1])
			i = j
		case strings.HasPrefix(cmd[i:], "&&") || strings.HasPrefix(cmd[i:], "||"):
			flush()
			out = append(out, cmd[i:i+2])
			i++
		case strings.IndexByte(";|(){}\n", c) >= 0:
			flush()
			out = append(out, string(c))
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// simpleCommands returns the words of each simple command of a RUN line,
// with the variables of env expanded.
func simpleCommands(run *instructions.RunCommand, env []string) [][]string {
	var out [][]string
	var cur []string
	for _, w := range words(strings.Join(run.CmdLine, " "), env) {
		if isOp(w) {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// command strips leading VAR=value assignments and returns the program and
// its arguments.
func command(ws []string) []string {
	for len(ws) > 0 && strings.Contains(ws[0], "=") && !strings.HasPrefix(ws[0], "-") {
		ws = ws[1:]
	}
	return ws
}

// goBuild describes one `go build` in a stage.
type goBuild struct {
	out, pkg string
	line     int
}

// goBuilds lists the `go build -o OUT PKG` commands of a stage, OUT made
// absolute against the WORKDIR in force.
func goBuilds(s *stage) []goBuild {
	var out []goBuild
	wd := "/"
	for _, c := range s.Commands {
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			wd = resolve(wd, c.Path)
		case *instructions.RunCommand:
			for _, sc := range simpleCommands(c, nil) {
				sc = command(sc)
				if len(sc) < 2 || path.Base(sc[0]) != "go" || sc[1] != "build" {
					continue
				}
				b := goBuild{line: line(c)}
				for i := 2; i < len(sc); i++ {
					switch {
					case sc[i] == "-o" && i+1 < len(sc):
						b.out = resolve(wd, sc[i+1])
						i++
					case strings.HasPrefix(sc[i], "-o="):
						b.out = resolve(wd, strings.TrimPrefix(sc[i], "-o="))
					case flagTakesValue(sc[i]):
						i++
					case !strings.HasPrefix(sc[i], "-"):
						b.pkg = sc[i]
					}
				}
				out = append(out, b)
			}
		}
	}
	return out
}

// flagTakesValue reports whether a go build flag given without "=" takes the
// next word as its value.
func flagTakesValue(f string) bool {
	if strings.Contains(f, "=") {
		return false
	}
	switch strings.TrimLeft(f, "-") {
	case "ldflags", "gcflags", "asmflags", "gccgoflags", "tags", "mod", "modfile", "overlay", "pgo", "pkgdir", "p", "buildmode", "compiler", "installsuffix", "toolexec", "covermode", "coverpkg", "buildvcs", "C":
		return true
	}
	return false
}

func resolve(wd, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(wd, p)
}

// structure checks how the stages fit together; see the package comment.
func structure(stages []*stage) []string {
	var problems []string
	bad := func(l int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("Dockerfile:%d: %s", l, fmt.Sprintf(format, args...)))
	}
	final := stages[len(stages)-1]

	// Every go build of every stage other than the last must build the CLI.
	builtCLI := false
	for _, s := range stages[:len(stages)-1] {
		for _, b := range goBuilds(s) {
			if b.out == "" {
				bad(b.line, "go build without -o: where the binary lands depends on the package name")
			}
			if strings.TrimSuffix(b.pkg, "/") == "./cmd/dettrain" {
				builtCLI = true
			}
		}
	}
	if !builtCLI {
		bad(0, "no stage runs go build ... ./cmd/dettrain")
	}

	// COPY --from sources are files the source stage's go build writes.
	var binaries []string // destinations of binaries copied into the last stage
	wd := "/"
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			wd = resolve(wd, c.Path)
		case *instructions.CopyCommand:
			if c.From == "" {
				continue
			}
			from := findStage(stages, c.From)
			if from == nil {
				bad(line(c), "COPY --from=%s: no such stage", c.From)
				continue
			}
			outs := map[string]bool{}
			for _, b := range goBuilds(from) {
				outs[b.out] = true
			}
			for _, src := range c.SourcePaths {
				if !outs[resolve("/", src)] {
					bad(line(c), "COPY --from=%s %s: stage %q's go build -o writes %v, not this path", c.From, src, from.Name, keys(outs))
				}
			}
			dest := resolve(wd, c.DestPath)
			if strings.HasSuffix(c.DestPath, "/") && len(c.SourcePaths) == 1 {
				dest = path.Join(dest, path.Base(c.SourcePaths[0]))
			}
			binaries = append(binaries, dest)
		}
	}
	if len(binaries) == 0 {
		bad(0, "the last stage copies nothing from an earlier stage")
	}

	// The last stage: non-root USER, ENTRYPOINT = the copied binary, volumes.
	user := ""
	var entry *instructions.EntrypointCommand
	volumes := map[string]bool{}
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entry = c
		case *instructions.VolumeCommand:
			for _, v := range c.Volumes {
				volumes[path.Clean(v)] = true
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		bad(0, "the last stage runs as root (no USER, or USER root)")
	}
	switch {
	case entry == nil:
		bad(0, "the last stage has no ENTRYPOINT")
	case entry.PrependShell:
		bad(line(entry), "ENTRYPOINT in shell form: signals (Ctrl-C saves a checkpoint) would go to /bin/sh, not dettrain")
	default:
		prog := entry.CmdLine[0]
		found := false
		for _, b := range binaries {
			if prog == b || (!strings.Contains(prog, "/") && prog == path.Base(b) && onPath(path.Dir(b))) {
				found = true
			}
		}
		if !found {
			bad(line(entry), "ENTRYPOINT %q is none of the binaries copied in (%v) found by PATH or path", prog, binaries)
		}
	}
	for _, v := range []string{"/data", "/runs"} {
		if !volumes[v] {
			bad(0, "the last stage does not declare VOLUME %s", v)
		}
	}
	return problems
}

// onPath reports whether dir is on the PATH of the usual base images (Debian,
// Ubuntu and NVIDIA's CUDA images all include these).
func onPath(dir string) bool {
	return slices.Contains([]string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}, dir)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// aptPackages lists the package names that `apt-get install` (or `apt
// install`) commands in the stage's RUN lines name, in order, without
// options, version pins or duplicates. The stage's ARGs declared before a RUN
// expand to their defaults (as in a build without --build-arg), e.g.
// libopencv-core406${OPENCV_T64} with ARG OPENCV_T64=t64.
func aptPackages(s *stage) []string {
	var out, env []string
	for _, c := range s.Commands {
		if a, ok := c.(*instructions.ArgCommand); ok {
			for _, kv := range a.Args {
				v := ""
				if kv.Value != nil {
					v = *kv.Value
				}
				env = append(env, kv.Key+"="+v)
			}
			continue
		}
		run, ok := c.(*instructions.RunCommand)
		if !ok {
			continue
		}
		for _, sc := range simpleCommands(run, env) {
			sc = command(sc)
			if len(sc) < 2 || (path.Base(sc[0]) != "apt-get" && path.Base(sc[0]) != "apt") {
				continue
			}
			i := 1
			for i < len(sc) && strings.HasPrefix(sc[i], "-") {
				i++
			}
			if i >= len(sc) || sc[i] != "install" {
				continue
			}
			for _, w := range sc[i+1:] {
				if strings.HasPrefix(w, "-") {
					continue
				}
				name, _, _ := strings.Cut(w, "=")
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// 3. the build context

// buildContext walks root as `docker build` sends it (after .dockerignore)
// and checks that it holds what the build needs.
func buildContext(root string, stages []*stage) (problems []string, size int64, n int) {
	var pm *patternmatcher.PatternMatcher
	if f, err := os.Open(filepath.Join(root, ".dockerignore")); err == nil {
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return []string{".dockerignore: " + err.Error()}, 0, 0
		}
		if pm, err = patternmatcher.New(patterns); err != nil {
			return []string{".dockerignore: " + err.Error()}, 0, 0
		}
	}
	excluded := func(rel string) bool {
		if pm == nil {
			return false
		}
		m, err := pm.MatchesOrParentMatches(rel)
		return err == nil && m
	}

	sent := map[string]bool{} // files and folders of the context, slash-separated, relative
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if excluded(rel) {
			// A folder is still walked: an exception (!pattern) may bring
			// back a file below it, as docker does.
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		sent[rel] = true
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
			n++
		}
		return nil
	})
	if err != nil {
		return []string{err.Error()}, size, n
	}

	// The files go build reads from the main module.
	need, err := goBuildInputs(root)
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, f := range need {
		if !sent[f] {
			problems = append(problems, fmt.Sprintf("%s: go build ./cmd/dettrain reads it, but it is not in the build context (.dockerignore)", f))
		}
	}

	// COPY sources taken from the context.
	for _, s := range stages {
		for _, c := range s.Commands {
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From != "" {
				continue
			}
			for _, src := range cp.SourcePaths {
				src = strings.TrimPrefix(path.Clean("/"+src), "/")
				if src == "" { // COPY . .
					continue
				}
				if !sent[src] && !globSent(sent, src) {
					problems = append(problems, fmt.Sprintf("Dockerfile:%d: COPY %s: not in the build context (missing, or excluded by .dockerignore)", line(cp), src))
				}
			}
		}
	}
	return problems, size, n
}

func globSent(sent map[string]bool, pattern string) bool {
	for f := range sent {
		if ok, _ := path.Match(pattern, f); ok {
			return true
		}
	}
	return false
}

// goBuildInputs lists, relative to root, the files of the main module that
// `go build ./cmd/dettrain` reads: go.mod, go.sum and each package's Go, cgo,
// C/C++ and embedded files.
func goBuildInputs(root string) ([]string, error) {
	const tmpl = `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}` +
		`{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .CgoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}` +
		`{{range .CFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .CXXFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}` +
		`{{range .HFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`
	cmd := exec.Command("go", "list", "-deps", "-f", tmpl, "./cmd/dettrain")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps ./cmd/dettrain in %s: %v", root, err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	files := []string{"go.mod", "go.sum"}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f == "" {
			continue
		}
		rel, err := filepath.Rel(abs, f)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files, nil
}
