// act.cu: the activation layer op (model/act.go): y = act(x) and
// dx (+)= dy*act'(x). Go wrappers: gpu/act.go; the activation functions and
// OP_ACT_DISPATCH are common.h's (bnact.cu uses them too).

template <int A>
struct OpActFwd {
  act_t* y;
  const act_t* x;
  struct In {
    float x;
  };
  __device__ In load(unsigned i) const { return In{ld(x[i])}; }
  __device__ void put(unsigned i, In v) const { y[i] = cv(op_actf<A>(v.x)); }
};
template <int A>
static __device__ void op_act_fwd_body(act_t* y, const act_t* x, int n) {
  op_ew(OpActFwd<A>{y, x}, n);
}
// y = act(x).
extern "C" __global__ void op_act_fwd(act_t* y, const act_t* x, int n, int act) {
  OP_ACT_DISPATCH(act, op_act_fwd_body, (y, x, n))
}

template <int A>
struct OpActBwd {
  act_t* dx;
  const act_t* dy;
  const act_t* x;
  int acc;
  struct In {
    float dy, x;
  };
  __device__ In load(unsigned i) const { return In{ld(dy[i]), ld(x[i])}; }
  __device__ void put(unsigned i, In v) const { store(dx + i, v.dy * op_actg<A>(v.x), acc); }
};
template <int A>
static __device__ void op_act_bwd_body(act_t* dx, const act_t* dy, const act_t* x, int n, int acc) {
  op_ew(OpActBwd<A>{dx, dy, x, acc}, n);
}
// dx (+)= dy * act'(x), x the activation's input.
extern "C" __global__ void op_act_bwd(act_t* dx, const act_t* dy, const act_t* x, int n, int act, int acc) {
  OP_ACT_DISPATCH(act, op_act_bwd_body, (dx, dy, x, n, acc))
}
