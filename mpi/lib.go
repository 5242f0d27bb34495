package mpi

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libNames are tried in order with dlopen: Open MPI 4 and 5's soname
// (Debian 12: libmpi.so.40 from libopenmpi3, pulled in by openmpi-bin),
// then the development symlink.
var libNames = []string{"libmpi.so.40", "libmpi.so"}

// Values from Open MPI's mpi.h (/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h,
// Open MPI 4.1.4): the thread levels are an enum starting at
// MPI_THREAD_SINGLE = 0, MPI_COMM_TYPE_SHARED is the first of the split-type
// enum, MPI_IN_PLACE is `((void *) 1)`, MPI_MAX_ERROR_STRING and
// MPI_MAX_LIBRARY_VERSION_STRING are 256.
const (
	threadSingle     = 0
	threadFunneled   = 1
	threadSerialized = 2
	threadMultiple   = 3

	commTypeShared = 0
	inPlace        = uintptr(1)
	maxErrorString = 256
	maxVersion     = 256
	success        = 0
)

// api is the part of Open MPI dettrain calls. Handles are addresses: in Open
// MPI's ABI MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM and the rest are macros for
// the address of a global object (mpi.h: `#define MPI_COMM_WORLD
// OMPI_PREDEFINED_GLOBAL(MPI_Comm, ompi_mpi_comm_world)`, which is
// `((MPI_Comm) ((void *) &(ompi_mpi_comm_world)))`), so dlsym of the global's
// name is the handle itself. That is Open MPI's ABI only: MPICH's handles are
// integer constants, and its library has none of these symbols.
type api struct {
	path string

	initThread        func(argc, argv unsafe.Pointer, required int32, provided *int32) int32
	commRank          func(comm uintptr, rank *int32) int32
	commSize          func(comm uintptr, size *int32) int32
	commSplitType     func(comm uintptr, splitType, key int32, info uintptr, newcomm *uintptr) int32
	commFree          func(comm *uintptr) int32
	commSetErrhandler func(comm, errhandler uintptr) int32
	allreduce         func(sendbuf uintptr, recvbuf unsafe.Pointer, count int32, datatype, op, comm uintptr) int32
	bcast             func(buf unsafe.Pointer, count int32, datatype uintptr, root int32, comm uintptr) int32
	barrier           func(comm uintptr) int32
	abort             func(comm uintptr, errorcode int32) int32
	finalize          func() int32
	errorString       func(errorcode int32, str *byte, resultlen *int32) int32
	libraryVersion    func(version *byte, resultlen *int32) int32

	commWorld    uintptr // ompi_mpi_comm_world
	float        uintptr // ompi_mpi_float
	double       uintptr // ompi_mpi_double
	byte_        uintptr // ompi_mpi_byte
	opSum        uintptr // ompi_mpi_op_sum
	infoNull     uintptr // ompi_mpi_info_null
	errorsReturn uintptr // ompi_mpi_errors_return
}

// load dlopens the first of names that exists and binds the calls and
// handles. RTLD_GLOBAL is required: Open MPI dlopens its own components
// (mca_btl_tcp.so and the rest) at MPI_Init, and they resolve their symbols
// against libmpi and libopen-pal in the global namespace.
func load(names []string) (*api, error) {
	var tried []string
	for _, name := range names {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, name+": cannot open shared object file") {
				msg = "not found"
			}
			tried = append(tried, fmt.Sprintf("%s (%s)", name, msg))
			continue
		}
		a := &api{path: name}
		if err := a.bind(h); err != nil {
			return nil, err
		}
		return a, nil
	}
	return nil, fmt.Errorf("mpi: Open MPI's library not found: tried %s (the dynamic loader's search: ld.so.cache, LD_LIBRARY_PATH). "+
		"Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin), or put the folder of your libmpi.so.40 on LD_LIBRARY_PATH",
		strings.Join(tried, ", "))
}

func (a *api) bind(h uintptr) error {
	funcs := []struct {
		fn   any
		name string
	}{
		{&a.initThread, "MPI_Init_thread"},
		{&a.commRank, "MPI_Comm_rank"},
		{&a.commSize, "MPI_Comm_size"},
		{&a.commSplitType, "MPI_Comm_split_type"},
		{&a.commFree, "MPI_Comm_free"},
		{&a.commSetErrhandler, "MPI_Comm_set_errhandler"},
		{&a.allreduce, "MPI_Allreduce"},
		{&a.bcast, "MPI_Bcast"},
		{&a.barrier, "MPI_Barrier"},
		{&a.abort, "MPI_Abort"},
		{&a.finalize, "MPI_Finalize"},
		{&a.errorString, "MPI_Error_string"},
		{&a.libraryVersion, "MPI_Get_library_version"},
	}
	for _, f := range funcs {
		if _, err := purego.Dlsym(h, f.name); err != nil {
			return fmt.Errorf("mpi: %s has no function %s (an MPI older than 3.0?)", a.path, f.name)
		}
		purego.RegisterLibFunc(f.fn, h, f.name)
	}
	handles := []struct {
		p    *uintptr
		name string
	}{
		{&a.commWorld, "ompi_mpi_comm_world"},
		{&a.float, "ompi_mpi_float"},
		{&a.double, "ompi_mpi_double"},
		{&a.byte_, "ompi_mpi_byte"},
		{&a.opSum, "ompi_mpi_op_sum"},
		{&a.infoNull, "ompi_mpi_info_null"},
		{&a.errorsReturn, "ompi_mpi_errors_return"},
	}
	for _, s := range handles {
		p, err := purego.Dlsym(h, s.name)
		if err != nil {
			return fmt.Errorf("mpi: %s has no symbol %s: it is not Open MPI (dettrain binds Open MPI's ABI only; MPICH's libmpi.so.12 is a different one)", a.path, s.name)
		}
		*s.p = p
	}
	return nil
}

// errString is MPI_Error_string(code), or the bare code if even that fails.
func (a *api) errString(code int32) string {
	var buf [maxErrorString]byte
	var n int32
	if a.errorString(code, &buf[0], &n) != success || n <= 0 || int(n) > len(buf) {
		return fmt.Sprintf("MPI error code %d", code)
	}
	return string(buf[:n])
}

// version is MPI_Get_library_version, one line.
func (a *api) version() string {
	var buf [maxVersion]byte
	var n int32
	if a.libraryVersion(&buf[0], &n) != success || n <= 0 || int(n) > len(buf) {
		return "unknown"
	}
	s := strings.TrimRight(string(buf[:n]), "\x00\n ")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
