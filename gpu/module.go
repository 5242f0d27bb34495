package gpu

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// Module is a loaded CUDA module (cubin or PTX).
type Module struct {
	h uintptr
}

// Func is a kernel of a module.
type Func struct {
	h    uintptr
	name string
}

// Name is the kernel's name.
func (f Func) Name() string { return f.name }

// LoadModule loads a cubin or NUL-terminated PTX image. Call inside Do.
func LoadModule(image []byte) (*Module, error) {
	if len(image) == 0 {
		return nil, fmt.Errorf("LoadModule: empty image")
	}
	m := &Module{}
	err := check("cuModuleLoadData", drv.cuModuleLoadData(&m.h, unsafe.Pointer(&image[0])))
	runtime.KeepAlive(image)
	return m, err
}

// Func looks up a kernel (an extern "C" __global__ function).
func (m *Module) Func(name string) (Func, error) {
	var f uintptr
	b := append([]byte(name), 0)
	if err := check("cuModuleGetFunction", drv.cuModuleGetFunction(&f, m.h, &b[0])); err != nil {
		return Func{}, fmt.Errorf("kernel %s: %w", name, err)
	}
	return Func{h: f, name: name}, nil
}

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z int }

// D1 is a one-dimensional size.
func D1(x int) Dim3 { return Dim3{x, 1, 1} }

// Grid1 returns the 1-D grid that covers n elements with blocks of block
// threads, capped so that grid-stride loops cover the rest.
func Grid1(n, block int) Dim3 {
	g := (n + block - 1) / block
	if g < 1 {
		g = 1
	}
	if g > 1<<20 {
		g = 1 << 20
	}
	return D1(g)
}

// launchArgs is the kernelParams array of one launch: the values, and a
// pointer to each. Both live in Go heap memory pinned for the call.
type launchArgs struct {
	vals [32]uint64
	ptrs [32]unsafe.Pointer
}

// Launch runs kernel f on s (asynchronously). Each argument is passed by
// value with the kernel's C type given by its Go type: Ptr (a pointer),
// int32 or int (int; an int must fit in 32 bits), int64 (long long),
// uint32, float32 (float) or float64 (double).
func (s *Stream) Launch(f Func, grid, block Dim3, shared int, args ...any) error {
	if len(args) > 32 {
		return fmt.Errorf("launching %s: %d arguments, at most 32", f.name, len(args))
	}
	a := new(launchArgs)
	for i, v := range args {
		switch v := v.(type) {
		case Ptr:
			a.vals[i] = uint64(v)
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				return fmt.Errorf("launching %s: argument %d = %d does not fit in a C int", f.name, i, v)
			}
			*(*int32)(unsafe.Pointer(&a.vals[i])) = int32(v)
		case int32:
			*(*int32)(unsafe.Pointer(&a.vals[i])) = v
		case uint32:
			*(*uint32)(unsafe.Pointer(&a.vals[i])) = v
		case int64:
			a.vals[i] = uint64(v)
		case float32:
			*(*float32)(unsafe.Pointer(&a.vals[i])) = v
		case float64:
			a.vals[i] = math.Float64bits(v)
		default:
			return fmt.Errorf("launching %s: argument %d has unsupported type %T", f.name, i, v)
		}
		a.ptrs[i] = unsafe.Pointer(&a.vals[i])
	}
	for _, d := range []Dim3{grid, block} {
		if d.X < 1 || d.Y < 1 || d.Z < 1 {
			return fmt.Errorf("launching %s: empty grid or block %v", f.name, d)
		}
	}
	var pin runtime.Pinner
	pin.Pin(a)
	err := check("cuLaunchKernel("+f.name+")", drv.cuLaunchKernel(f.h, uint32(grid.X), uint32(grid.Y), uint32(grid.Z),
		uint32(block.X), uint32(block.Y), uint32(block.Z), uint32(shared), s.h, &a.ptrs[0], nil))
	pin.Unpin()
	return err
}
