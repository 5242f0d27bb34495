package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// good is a minimal Dockerfile that passes every check.
const good = `FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY . .
RUN go build -o out/dettrain ./cmd/dettrain

FROM ubuntu:24.04 AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends libopencv-core406t64 libopenblas0=0.3.26+ds-1 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/out/dettrain /usr/local/bin/
USER 1000
VOLUME ["/data", "/runs"]
ENTRYPOINT ["dettrain"]
`

func stagesOf(t *testing.T, df string) []*stage {
	t.Helper()
	s, err := parseStages([]byte(df))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGoodPasses(t *testing.T) {
	if p := structure(stagesOf(t, good)); len(p) != 0 {
		t.Errorf("structure: %v", p)
	}
	p, err := buildkitLint("Dockerfile", []byte(good), true)
	if err != nil || len(p) != 0 {
		t.Errorf("buildkit checks: %v %v", p, err)
	}
}

func TestStructureFindsMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"copy path differs from go build -o", "COPY --from=build /src/out/dettrain", "COPY --from=build /out/dettrain", "go build -o writes [/src/out/dettrain]"},
		{"no -o", "go build -o out/dettrain ./cmd/dettrain", "go build ./cmd/dettrain", "go build without -o"},
		{"another package", "./cmd/dettrain\n", "./cmd/other\n", "no stage runs go build"},
		{"unknown stage", "--from=build", "--from=builder", "no such stage"},
		{"root user", "USER 1000\n", "USER root\n", "runs as root"},
		{"no user", "USER 1000\n", "", "runs as root"},
		{"no runs volume", `VOLUME ["/data", "/runs"]`, `VOLUME ["/data"]`, "VOLUME /runs"},
		{"entrypoint name", `ENTRYPOINT ["dettrain"]`, `ENTRYPOINT ["detrain"]`, `ENTRYPOINT "detrain" is none of the binaries`},
		{"entrypoint not on PATH", "/usr/local/bin/", "/opt/bin/", `ENTRYPOINT "dettrain" is none of the binaries`},
		{"entrypoint shell form", `ENTRYPOINT ["dettrain"]`, `ENTRYPOINT dettrain`, "shell form"},
	} {
		df := strings.Replace(good, tc.old, tc.new, 1)
		if df == good {
			t.Fatalf("%s: the replacement changed nothing", tc.name)
		}
		p := strings.Join(structure(stagesOf(t, df)), "\n")
		if !strings.Contains(p, tc.want) {
			t.Errorf("%s: want a problem containing %q, got:\n%s", tc.name, tc.want, p)
		}
	}
}

func TestBuildkitFindsMistakes(t *testing.T) {
	for _, tc := range []struct {
		old, new, rule string
	}{
		{"AS build", "as build", "FromAsCasing"},
		{`ENTRYPOINT ["dettrain"]`, "ENTRYPOINT dettrain", "JSONArgsRecommended"},
		{"WORKDIR /src", "WORKDIR src", "WorkdirRelativePath"},
		{"USER 1000", "ENV A=$UNDEFINED\nUSER 1000", "UndefinedVar"},
		{"WORKDIR /src", "MAINTAINER someone\nWORKDIR /src", "MaintainerDeprecated"},
		{"AS runtime", "AS build", "DuplicateStageName"},
	} {
		df := strings.Replace(good, tc.old, tc.new, 1)
		p, err := buildkitLint("Dockerfile", []byte(df), false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(p, "\n"), tc.rule) {
			t.Errorf("%s -> %s: want %s, got %v", tc.old, tc.new, tc.rule, p)
		}
	}
}

func TestAptPackages(t *testing.T) {
	s := stagesOf(t, good+`RUN if ! true; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y cuda-nvrtc-13-0; fi`)
	got := aptPackages(s[1])
	want := []string{"libopencv-core406t64", "libopenblas0", "cuda-nvrtc-13-0"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	// ARG defaults expand, later ARGs only after their declaration; an ARG
	// without a default and an undeclared variable expand to nothing.
	s = stagesOf(t, `FROM debian:12 AS runtime
ARG T64=t64 NONE
RUN apt-get install -y libopencv-core406${T64} libopencv-dnn406$T64 x${NONE} y${UNDECLARED} z${LATER}
ARG LATER=1
RUN apt-get install -y w${LATER}
`)
	got = aptPackages(s[0])
	want = []string{"libopencv-core406t64", "libopencv-dnn406t64", "x", "y", "z", "w1"}
	if !slices.Equal(got, want) {
		t.Errorf("with ARGs: got %v, want %v", got, want)
	}
}

// TestBuildContext builds a tiny module whose .dockerignore leaves out a
// package that cmd/dettrain imports and a folder that COPY names.
func TestBuildContext(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("go.sum", "")
	write("cmd/dettrain/main.go", "package main\n\nimport _ \"example.com/m/data\"\n\nfunc main() {}\n")
	write("data/data.go", "package data\n")
	write("data/data_test.go", "package data\n")
	write("configs/demo.yaml", "a: 1\n")
	write("runs/big.weights", "x")
	df := good + "COPY configs /opt/dettrain/configs\n"

	write(".dockerignore", "runs\n**/*_test.go\n")
	p, _, n := buildContext(dir, stagesOf(t, df))
	if len(p) != 0 || n != 6 { // go.mod go.sum main.go data.go demo.yaml .dockerignore
		t.Errorf("clean context: %v, %d files", p, n)
	}

	write(".dockerignore", "runs\n/data\nconfigs\n")
	p, _, _ = buildContext(dir, stagesOf(t, df))
	got := strings.Join(p, "\n")
	for _, want := range []string{"data/data.go: go build ./cmd/dettrain reads it", "COPY configs: not in the build context"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q among:\n%s", want, got)
		}
	}
}

// TestRepositoryDockerfile runs every check on the repository's Dockerfile.
func TestRepositoryDockerfile(t *testing.T) {
	dt, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := stagesOf(t, string(dt))
	if p, err := buildkitLint("Dockerfile", dt, true); err != nil || len(p) != 0 {
		t.Errorf("buildkit checks: %v %v", p, err)
	}
	if p := structure(stages); len(p) != 0 {
		t.Errorf("structure: %v", p)
	}
	if p, _, _ := buildContext("../..", stages); len(p) != 0 {
		t.Errorf("build context: %v", p)
	}
}
