package mpi

import (
	"fmt"
	"os"
	"strconv"
)

// Env is what a launcher told this process through its environment, before
// any MPI call: which launcher, this process's rank among Size processes and
// its rank among the processes of its own host (LocalRank, the GPU it takes).
// A field the launcher does not set is -1.
type Env struct {
	Launcher  string // "openmpi" (mpirun), "slurm" (srun) or "pmix"
	Rank      int
	Size      int
	LocalRank int
}

// The variables each launcher sets, checked in this order:
//
//   - Open MPI's mpirun (also under Kubeflow Trainer's MPI runtime, which runs
//     mpirun over ssh): OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
//     OMPI_COMM_WORLD_LOCAL_RANK.
//   - Slurm's srun (one task per rank, srun --mpi=pmix): SLURM_PROCID,
//     SLURM_STEP_NUM_TASKS (else SLURM_NTASKS), SLURM_LOCALID. srun sets
//     SLURM_STEP_ID too; an sbatch script itself (the batch step) has
//     SLURM_PROCID=0 and SLURM_NTASKS but is not one of the ranks, so Slurm
//     counts only where SLURM_STEP_ID is set.
//   - Any other PMIx launcher (prterun, Open MPI 5's mpirun): PMIX_RANK; the
//     size is known only after Init.
var (
	ompiVars  = [3]string{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"}
	slurmVars = [3]string{"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"}
)

// Launched reports whether this process was started by an MPI launcher
// (mpirun, srun, a PMIx launcher), from the environment alone: without one,
// ok is false and training runs as one process, exactly as before. A
// variable that is set but is not a non-negative number counts as -1 (Init,
// which asks MPI itself, then has the truth).
func Launched() (Env, bool) { return launchedFrom(os.Getenv) }

func launchedFrom(getenv func(string) string) (Env, bool) {
	num := func(k string) int {
		v := getenv(k)
		if v == "" {
			return -1
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	if getenv(ompiVars[0]) != "" {
		return Env{Launcher: "openmpi", Rank: num(ompiVars[0]), Size: num(ompiVars[1]), LocalRank: num(ompiVars[2])}, true
	}
	if getenv(slurmVars[0]) != "" && getenv("SLURM_STEP_ID") != "" {
		size := num(slurmVars[1])
		if size < 0 {
			size = num("SLURM_NTASKS")
		}
		return Env{Launcher: "slurm", Rank: num(slurmVars[0]), Size: size, LocalRank: num(slurmVars[2])}, true
	}
	if getenv("PMIX_RANK") != "" {
		return Env{Launcher: "pmix", Rank: num("PMIX_RANK"), Size: -1, LocalRank: -1}, true
	}
	return Env{Rank: 0, Size: 1, LocalRank: 0}, false
}

// String is e.g. "openmpi rank 1 of 2 (local rank 1)".
func (e Env) String() string {
	if e.Launcher == "" {
		return "no launcher (one process)"
	}
	return fmt.Sprintf("%s rank %d of %d (local rank %d)", e.Launcher, e.Rank, e.Size, e.LocalRank)
}
