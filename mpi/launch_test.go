package mpi

import (
	"strings"
	"testing"
)

func TestLaunchedFrom(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want Env
		ok   bool
	}{
		{"none", nil, Env{Rank: 0, Size: 1, LocalRank: 0}, false},
		{"mpirun", map[string]string{"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1", "PMIX_RANK": "3"},
			Env{"openmpi", 3, 4, 1}, true},
		{"srun", map[string]string{"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1", "SLURM_STEP_ID": "0"},
			Env{"slurm", 5, 8, 1}, true},
		{"srun without SLURM_STEP_NUM_TASKS", map[string]string{"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0", "SLURM_STEP_ID": "2"},
			Env{"slurm", 1, 2, 0}, true},
		// The batch script of sbatch has SLURM_PROCID=0 but is not a rank.
		{"sbatch script", map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "77"}, Env{Rank: 0, Size: 1, LocalRank: 0}, false},
		{"pmix", map[string]string{"PMIX_RANK": "2", "PMIX_NAMESPACE": "prterun-x-1@1"}, Env{"pmix", 2, -1, -1}, true},
		{"garbage", map[string]string{"OMPI_COMM_WORLD_RANK": "x", "OMPI_COMM_WORLD_SIZE": "-2"}, Env{"openmpi", -1, -1, -1}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := launchedFrom(func(k string) string { return tc.env[k] })
			if got != tc.want || ok != tc.ok {
				t.Errorf("launchedFrom = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestEnvString(t *testing.T) {
	if got, want := (Env{"openmpi", 1, 2, 1}).String(), "openmpi rank 1 of 2 (local rank 1)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// TestLoadMissing: without the library, the error names what was tried and
// the fix.
func TestLoadMissing(t *testing.T) {
	_, err := load([]string{"libmpi-dettrain-missing.so.40"})
	if err == nil {
		t.Fatal("load of a missing library succeeded")
	}
	for _, want := range []string{"libmpi-dettrain-missing.so.40 (not found)", "apt-get install openmpi-bin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
