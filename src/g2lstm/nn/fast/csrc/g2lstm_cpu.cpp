// Fused pointwise part of one G2-LSTM time step on CPU (float32 / float64).
//
// Built just in time by g2lstm/nn/fast/kernel.py (torch.utils.cpp_extension.load) with the
// host's vector ISA; when it cannot be built the fast path runs the same math as ~9 ATen ops
// per step (g2lstm/nn/fast/recurrence.py). The GEMMs stay in Python (MKL packed / oneDNN).
//
// Gate columns of the (N, 4H) pre-activations: i, f, g, o. Each of i, f, o has a kind:
//   SIG  sigmoid(scale * a)                         (Eq. 1; scale = 1/tau for noisy gates,
//                                                    Eqs. 11-12, the noise already in `a`)
//   HARD 1[a >= 0], zero gradient                   (hard 0/1 gates at inference)
//   ST   1[a >= 0] forward, sigmoid(scale * a) kept in a side buffer for the gradient
//        (straight-through estimator)
// g is always tanh(a). The cell update is Eq. 1: c' = f c + i g, h' = o tanh(c').
//
// Rows whose mask entry is false keep their state (c' = c, h' = h) and output 0, as the
// reference loop does for t >= length.
//
// Gate noise (training, noisy gates): with a seed, the forward step adds B * L to the noisy
// gates' pre-activations itself, drawing each row's uniforms where they are used, in the
// rows' parallel loop: Philox4x32-10 (Salmon et al. 2011), counter (j / 4, row, t, stream),
// key = the 64-bit seed, word j % 4, exactly as g2lstm/nn/philox.py (the tested reference).
// B = [v < p] and L = logit(v / p) (one uniform for both), or B from a per-sequence mask
// and L = logit(v) (mask_per_sequence); see g2lstm/nn/noise.py.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/csrc/utils/pybind.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace {

using at::Tensor;

enum Kind : int64_t { SIG = 0, HARD = 1, ST = 2 };

struct Gates {
  std::array<int64_t, 3> kind;   // i, f, o
  std::array<double, 3> scale;   // i, f, o
  std::array<int64_t, 3> s_col;  // column block (in units of H) in the ST buffer, or -1
  int64_t n_st;                  // straight-through gates: the ST buffer has n_st * H columns
};

Gates make_gates(const std::vector<int64_t>& kinds, const std::vector<double>& scales) {
  TORCH_CHECK(kinds.size() == 3 && scales.size() == 3, "kinds/scales: 3 entries (i, f, o)");
  Gates gs{};
  int64_t st = 0;
  for (int k = 0; k < 3; ++k) {
    TORCH_CHECK(kinds[k] >= SIG && kinds[k] <= ST, "gate kind must be 0, 1 or 2");
    gs.kind[k] = kinds[k];
    gs.scale[k] = scales[k];
    gs.s_col[k] = kinds[k] == ST ? st++ : -1;
  }
  gs.n_st = st;
  return gs;
}

void check_rows(const Tensor& t, int64_t n, int64_t cols, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == 2 && t.size(0) == n && t.size(1) == cols &&
                  t.is_contiguous(),
              name, ": expected a contiguous CPU (", n, ", ", cols, ") tensor, got ", t.sizes(),
              " on ", t.device());
}

void check_mask(const std::optional<Tensor>& mask, int64_t rows) {
  if (mask)
    TORCH_CHECK(mask->device().is_cpu() && mask->scalar_type() == at::kBool &&
                    mask->numel() == rows && mask->is_contiguous(),
                "mask: expected a contiguous CPU bool tensor of ", rows, " entries");
}

template <typename T>
using Vec = at::vec::Vectorized<T>;

// exp, sigmoid and tanh. float: ATen's polynomial exp_u20 (<= 20 ulp, ~1.2e-6 relative),
// 2-3x cheaper than the 1-ulp Sleef calls that dominate this kernel; sigmoid and tanh are
// built on it (absolute error ~1e-6, like the vendor kernels' own approximations), and a NaN
// input gives NaN (exp_u20 alone would clamp it). double: the 1-ulp Sleef functions.
template <typename T>
inline Vec<T> fast_exp(Vec<T> a) {
  return a.exp();
}

template <>
inline Vec<float> fast_exp(Vec<float> a) {
  return Vec<float>::blendv(a.exp_u20(), a, a.isnan());
}

template <typename T>
inline Vec<T> sigmoid(Vec<T> a) {
  const Vec<T> one(T(1));
  return one / (one + fast_exp(a.neg()));
}

template <typename T>
inline Vec<T> tanh_(Vec<T> a) {
  return a.tanh();
}

template <>
inline Vec<float> tanh_(Vec<float> a) {  // 2 sigmoid(2a) - 1
  const Vec<float> two(2.0f);
  return two / (Vec<float>(1.0f) + fast_exp(a * Vec<float>(-2.0f))) - Vec<float>(1.0f);
}

template <typename T>
inline Vec<T> step01(Vec<T> a) {  // 1[a >= 0]; NaN -> 0 like torch.ge
  return (a >= Vec<T>(T(0))) & Vec<T>(T(1));
}

// Activation of gate k (0=i, 1=f, 2=o) of pre-activation a; stores the sigmoid for ST.
template <typename T>
inline Vec<T> activate(const Gates& gs, int k, Vec<T> a, T* s_row, int64_t j, int64_t hid,
                       int64_t n) {
  switch (gs.kind[k]) {
    case HARD:
      return step01(a);
    case ST: {
      if (s_row != nullptr)  // kept for the backward only
        sigmoid(a * Vec<T>(T(gs.scale[k]))).store(s_row + gs.s_col[k] * hid + j, n);
      return step01(a);
    }
    default:
      return sigmoid(gs.scale[k] == 1.0 ? a : a * Vec<T>(T(gs.scale[k])));
  }
}

inline bool row_on(const bool* mask, int64_t n) { return mask == nullptr || mask[n]; }

// ------------------------------------------------------------------ Philox4x32-10
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule
constexpr int64_t kLanes = 16;  // counters per batch: one AVX-512 register of 32-bit words

// The 4 * kLanes words of noise columns [4 q0, 4 (q0 + kLanes)) of row `row` at step `t`,
// in column order. Written lane-parallel so that the compiler vectorises the rounds.
inline void philox_lanes(uint64_t seed, uint32_t q0, uint32_t row, uint32_t t, uint32_t stream,
                         uint32_t* out) {
  uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) {
    c0[l] = q0 + uint32_t(l);
    c1[l] = row;
    c2[l] = t;
    c3[l] = stream;
  }
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    if (r) {
      k0 += kW0;
      k1 += kW1;
    }
    for (int64_t l = 0; l < kLanes; ++l) {
      const uint64_t p0 = uint64_t(kM0) * c0[l], p1 = uint64_t(kM1) * c2[l];
      const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = uint32_t(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = uint32_t(p1);
      c3[l] = uint32_t(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
  }
  for (int64_t l = 0; l < kLanes; ++l) {
    out[4 * l] = c0[l];
    out[4 * l + 1] = c1[l];
    out[4 * l + 2] = c2[l];
    out[4 * l + 3] = c3[l];
  }
}

// Uniform on [0, 1) from a word: float (x >> 8) 2^-24, double x 2^-32 (exact values).
template <typename T>
inline T to_uniform(uint32_t x);
template <>
inline float to_uniform<float>(uint32_t x) { return float(x >> 8) * 0x1p-24f; }
template <>
inline double to_uniform<double>(uint32_t x) { return double(x) * 0x1p-32; }
template <typename T>
constexpr int uniform_bits() { return sizeof(T) == 4 ? 24 : 32; }

// Per-thread scratch of one row: words (padded to whole lane batches) and values.
template <typename T>
struct RowScratch {
  std::vector<uint32_t> words;
  std::vector<T> values;
  void fit(int64_t width) {
    const int64_t quads = (width + 3) / 4, padded = (quads + kLanes - 1) / kLanes * kLanes;
    if (int64_t(words.size()) < 4 * padded) words.resize(4 * padded);
    if (int64_t(values.size()) < width) values.resize(width);
  }
};

// v[0, width): the uniforms of one row at step t.
template <typename T>
void row_uniforms(uint64_t seed, int64_t row, int64_t t, int64_t stream, int64_t width, T* v,
                  uint32_t* words) {
  const int64_t quads = (width + 3) / 4;
  for (int64_t q = 0; q < quads; q += kLanes)
    philox_lanes(seed, uint32_t(q), uint32_t(row), uint32_t(t), uint32_t(stream), words + 4 * q);
  for (int64_t j = 0; j < width; ++j) v[j] = to_uniform<T>(words[j]);
}

// The noise a forward step draws: seed < 0 means none.
struct Noise {
  int64_t seed = -1;
  int64_t t = 0;
  double p = 0.0;
  const bool* mask = nullptr;      // (N, width) per-sequence B, or null: B = [v < p]
  std::array<int64_t, 3> block{};  // i, f, o: block of H noise columns, or -1
  int64_t width = 0;
};

// out[0, width): B * L of one row (exactly 0 where B = 0: logit(1/2) = log 1).
template <typename T>
void row_noise(const Noise& nz, int64_t row, T* out, uint32_t* words) {
  const int64_t width = nz.width;
  row_uniforms<T>(uint64_t(nz.seed), row, nz.t, 0, width, out, words);
  const T e = std::numeric_limits<T>::epsilon() / 2, hi = T(1) - e;
  const double scale = std::ldexp(1.0, uniform_bits<T>());
  const T thr = T(std::ceil(nz.p * scale) / scale);  // exact: see noise.mask_threshold
  const T inv_p = nz.p >= 1.0 ? T(1) : T(1.0 / nz.p);
  const bool* b = nz.mask ? nz.mask + row * width : nullptr;
  for (int64_t j = 0; j < width; ++j) {
    const T v = out[j];
    const bool on = b ? b[j] : v < thr;
    const T u = b ? v : v * inv_p;
    out[j] = on ? std::min(std::max(u, e), hi) : T(0.5);
  }
  const int64_t vs = Vec<T>::size();
  const Vec<T> one(T(1));
  for (int64_t j = 0; j < width; j += vs) {
    const int64_t n = std::min(vs, width - j);
    Vec<T> u = Vec<T>::loadu(out + j, n);
    (u / (one - u)).log().store(out + j, n);
  }
}

// Parallel over rows when the step is large enough to pay for waking the threads.
template <typename F>
void for_rows(int64_t rows, int64_t hid, const F& f) {
  constexpr int64_t kMinPerThread = 4096;  // elements
  const int64_t grain = std::max<int64_t>(1, kMinPerThread / std::max<int64_t>(1, hid));
  at::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) f(n);
  });
}

template <typename T>
void forward_impl(const Tensor& pre, const Tensor& hw, const Tensor& c_prev,
                  const std::optional<Tensor>& h_prev, const Tensor& c_out, const Tensor& h_out,
                  const std::optional<Tensor>& y_out, const std::optional<Tensor>& s_out,
                  const std::optional<Tensor>& mask, const Gates& gs, bool keep_gates,
                  const Noise& nz) {
  const int64_t rows = c_prev.size(0), hid = c_prev.size(1), vs = Vec<T>::size();
  T* P = pre.data_ptr<T>();
  const T* W = hw.data_ptr<T>();
  const T* C = c_prev.data_ptr<T>();
  const T* Hp = h_prev ? h_prev->data_ptr<T>() : nullptr;
  T* Co = c_out.data_ptr<T>();
  T* Ho = h_out.data_ptr<T>();
  T* Y = y_out ? y_out->data_ptr<T>() : nullptr;
  T* S = s_out ? s_out->data_ptr<T>() : nullptr;
  const bool* M = mask ? mask->data_ptr<bool>() : nullptr;
  const int64_t s_width = s_out ? s_out->size(1) : 0;
  for_rows(rows, hid, [&](int64_t r) {
    T* p = P + r * 4 * hid;
    const T* w = W + r * 4 * hid;
    T* s_row = S ? S + r * s_width : nullptr;
    const bool on = row_on(M, r);
    const T* nb = nullptr;  // this row's noise B * L (width columns), drawn here
    if (nz.seed >= 0 && on) {
      thread_local RowScratch<T> scratch;
      scratch.fit(nz.width);
      row_noise<T>(nz, r, scratch.values.data(), scratch.words.data());
      nb = scratch.values.data();
    }
    for (int64_t j = 0; j < hid; j += vs) {
      const int64_t n = std::min(vs, hid - j);
      // pre + hw (+ noise block `blk` of this row)
      auto ld = [&](int64_t k, int64_t blk) {
        Vec<T> a = Vec<T>::loadu(p + k * hid + j, n) + Vec<T>::loadu(w + k * hid + j, n);
        return nb && blk >= 0 ? a + Vec<T>::loadu(nb + blk * hid + j, n) : a;
      };
      Vec<T> i = activate<T>(gs, 0, ld(0, nz.block[0]), s_row, j, hid, n);
      Vec<T> f = activate<T>(gs, 1, ld(1, nz.block[1]), s_row, j, hid, n);
      Vec<T> g = tanh_(ld(2, -1));
      Vec<T> o = activate<T>(gs, 2, ld(3, nz.block[2]), s_row, j, hid, n);
      Vec<T> c_old = Vec<T>::loadu(C + r * hid + j, n);
      Vec<T> c = f * c_old + i * g;
      Vec<T> h = o * tanh_(c);
      if (keep_gates) {
        i.store(p + j, n);
        f.store(p + hid + j, n);
        g.store(p + 2 * hid + j, n);
        o.store(p + 3 * hid + j, n);
      }
      if (on) {
        c.store(Co + r * hid + j, n);
        h.store(Ho + r * hid + j, n);
        if (Y) h.store(Y + r * hid + j, n);
      } else {
        c_old.store(Co + r * hid + j, n);
        if (Hp && Ho + r * hid != Hp + r * hid) Vec<T>::loadu(Hp + r * hid + j, n).store(Ho + r * hid + j, n);
        if (Y) Vec<T>(T(0)).store(Y + r * hid + j, n);
      }
    }
  });
}

// One forward step. pre: (N, 4H) x W_ih^T (+ noise) of this step, overwritten with the
// activated gates when keep_gates; hw: (N, 4H) h W_hh^T + bias; c_prev, c_out, h_out:
// (N, H) (c_out may be c_prev); h_prev: (N, H), needed with a mask; y_out: (N, H) or None;
// s_out: (N, H * #ST gates) (needed with keep_gates) or None; mask: (N,) bool or None.
// Gate noise drawn here when noise_seed is given (0 <= seed < 2^63): step index noise_t,
// P(B = 1) = noise_p, noise_mask (N, W) bool per-sequence B or None, noise_blocks: per gate
// i, f, o the block of H noise columns (-1: none); W = H * #blocks.
void forward_step(const Tensor& pre, const Tensor& hw, const Tensor& c_prev,
                  const std::optional<Tensor>& h_prev, const Tensor& c_out, const Tensor& h_out,
                  const std::optional<Tensor>& y_out, const std::optional<Tensor>& s_out,
                  const std::optional<Tensor>& mask, std::vector<int64_t> kinds,
                  std::vector<double> scales, bool keep_gates, std::optional<int64_t> noise_seed,
                  int64_t noise_t, double noise_p, const std::optional<Tensor>& noise_mask,
                  std::vector<int64_t> noise_blocks) {
  const Gates gs = make_gates(kinds, scales);
  const int64_t rows = c_prev.size(0), hid = c_prev.size(1);
  check_rows(pre, rows, 4 * hid, "pre");
  check_rows(hw, rows, 4 * hid, "hw");
  check_rows(c_prev, rows, hid, "c_prev");
  check_rows(c_out, rows, hid, "c_out");
  check_rows(h_out, rows, hid, "h_out");
  if (h_prev) check_rows(*h_prev, rows, hid, "h_prev");
  if (y_out) check_rows(*y_out, rows, hid, "y_out");
  TORCH_CHECK(gs.n_st == 0 || s_out || !keep_gates, "straight-through gates need s_out");
  if (s_out) check_rows(*s_out, rows, gs.n_st * hid, "s_out");
  check_mask(mask, rows);
  TORCH_CHECK(!mask || h_prev, "a mask needs h_prev");
  Noise nz;
  if (noise_seed) {
    TORCH_CHECK(*noise_seed >= 0, "noise_seed must be >= 0");
    TORCH_CHECK(noise_t >= 0 && noise_t <= UINT32_MAX && rows <= UINT32_MAX,
                "noise: step index and rows must fit 32 bits");
    TORCH_CHECK(noise_p > 0.0 && noise_p <= 1.0, "noise_p must lie in (0, 1]");
    TORCH_CHECK(noise_blocks.size() == 3, "noise_blocks: 3 entries (i, f, o)");
    int64_t n_blocks = 0;
    for (int k = 0; k < 3; ++k) {
      nz.block[k] = noise_blocks[k];
      n_blocks += noise_blocks[k] >= 0;
    }
    for (int k = 0; k < 3; ++k)
      TORCH_CHECK(nz.block[k] < n_blocks, "noise_blocks: a block index is out of range");
    nz.seed = *noise_seed;
    nz.t = noise_t;
    nz.p = noise_p;
    nz.width = n_blocks * hid;
    if (noise_mask) {
      check_rows(*noise_mask, rows, nz.width, "noise_mask");
      TORCH_CHECK(noise_mask->scalar_type() == at::kBool, "noise_mask: expected bool");
      nz.mask = noise_mask->data_ptr<bool>();
    }
  }
  AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "g2lstm_forward_step", [&] {
    forward_impl<scalar_t>(pre, hw, c_prev, h_prev, c_out, h_out, y_out, s_out, mask, gs,
                           keep_gates, nz);
  });
}

template <typename T>
inline Vec<T> gate_grad(const Gates& gs, int k, Vec<T> d, Vec<T> y, const T* s_row, int64_t j,
                        int64_t hid, int64_t n) {
  const Vec<T> one(T(1));
  switch (gs.kind[k]) {
    case HARD:
      return Vec<T>(T(0));
    case ST: {
      Vec<T> s = Vec<T>::loadu(s_row + gs.s_col[k] * hid + j, n);
      d = d * (one - s) * s;
      break;
    }
    default:
      d = d * (one - y) * y;
  }
  return gs.scale[k] == 1.0 ? d : d * Vec<T>(T(gs.scale[k]));
}

template <typename T>
void backward_impl(const Tensor& gates, const Tensor& c_t, const Tensor& c_prev, const Tensor& dh,
                   const std::optional<Tensor>& dy, const Tensor& dc, const Tensor& dgates,
                   const std::optional<Tensor>& s, const std::optional<Tensor>& mask,
                   const Gates& gs) {
  const int64_t rows = c_t.size(0), hid = c_t.size(1), vs = Vec<T>::size();
  const T* G = gates.data_ptr<T>();
  const T* Ct = c_t.data_ptr<T>();
  const T* Cp = c_prev.data_ptr<T>();
  const T* DH = dh.data_ptr<T>();
  const T* DY = dy ? dy->data_ptr<T>() : nullptr;
  T* DC = dc.data_ptr<T>();
  T* DG = dgates.data_ptr<T>();
  const T* S = s ? s->data_ptr<T>() : nullptr;
  const bool* M = mask ? mask->data_ptr<bool>() : nullptr;
  const int64_t s_width = s ? s->size(1) : 0;
  const Vec<T> one(T(1));
  for_rows(rows, hid, [&](int64_t r) {
    const T* g4 = G + r * 4 * hid;
    T* d4 = DG + r * 4 * hid;
    if (!row_on(M, r)) {  // past the end: no gradient through the gates, dc carried
      std::fill(d4, d4 + 4 * hid, T(0));
      return;
    }
    const T* s_row = S ? S + r * s_width : nullptr;
    for (int64_t j = 0; j < hid; j += vs) {
      const int64_t n = std::min(vs, hid - j);
      const int64_t e = r * hid + j;
      Vec<T> i = Vec<T>::loadu(g4 + j, n), f = Vec<T>::loadu(g4 + hid + j, n);
      Vec<T> g = Vec<T>::loadu(g4 + 2 * hid + j, n), o = Vec<T>::loadu(g4 + 3 * hid + j, n);
      Vec<T> d_h = Vec<T>::loadu(DH + e, n);
      if (DY) d_h = d_h + Vec<T>::loadu(DY + e, n);
      Vec<T> tc = tanh_(Vec<T>::loadu(Ct + e, n));
      Vec<T> d_c = Vec<T>::loadu(DC + e, n) + d_h * o * (one - tc * tc);  // dL/dc_t in total
      gate_grad<T>(gs, 0, d_c * g, i, s_row, j, hid, n).store(d4 + j, n);
      gate_grad<T>(gs, 1, d_c * Vec<T>::loadu(Cp + e, n), f, s_row, j, hid, n)
          .store(d4 + hid + j, n);
      (d_c * i * (one - g * g)).store(d4 + 2 * hid + j, n);
      gate_grad<T>(gs, 2, d_h * tc, o, s_row, j, hid, n).store(d4 + 3 * hid + j, n);
      (d_c * f).store(DC + e, n);
    }
  });
}

// One backward step. gates: (N, 4H) activated gates of step t; c_t, c_prev: (N, H) cell
// states after / before it; dh: (N, H) dL/dh_t (plus dy, (N, H), when given); dc: (N, H)
// dL/dc_t from later steps, overwritten with dL/dc_{t-1}; dgates: (N, 4H) output, dL/da_t;
// s: the ST side buffer of step t or None; mask: (N,) bool or None (rows past their length
// get zero dgates and keep dc).
void backward_step(const Tensor& gates, const Tensor& c_t, const Tensor& c_prev, const Tensor& dh,
                   const std::optional<Tensor>& dy, const Tensor& dc, const Tensor& dgates,
                   const std::optional<Tensor>& s, const std::optional<Tensor>& mask,
                   std::vector<int64_t> kinds, std::vector<double> scales) {
  const Gates gs = make_gates(kinds, scales);
  const int64_t rows = c_t.size(0), hid = c_t.size(1);
  check_rows(gates, rows, 4 * hid, "gates");
  check_rows(dgates, rows, 4 * hid, "dgates");
  check_rows(c_t, rows, hid, "c_t");
  check_rows(c_prev, rows, hid, "c_prev");
  check_rows(dh, rows, hid, "dh");
  check_rows(dc, rows, hid, "dc");
  if (dy) check_rows(*dy, rows, hid, "dy");
  TORCH_CHECK(gs.n_st == 0 || s, "straight-through gates need s");
  if (s) check_rows(*s, rows, gs.n_st * hid, "s");
  check_mask(mask, rows);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "g2lstm_backward_step", [&] {
    backward_impl<scalar_t>(gates, c_t, c_prev, dh, dy, dc, dgates, s, mask, gs);
  });
}

// out (T, N, W) float/double, contiguous: the uniforms of steps 0..T-1, rows 0..N-1, columns
// 0..W-1 for `seed` and `stream` (g2lstm/nn/philox.py's uniform(), bit for bit).
void philox_uniform(int64_t seed, int64_t stream, const Tensor& out) {
  TORCH_CHECK(seed >= 0, "seed must be >= 0");
  TORCH_CHECK(out.device().is_cpu() && out.dim() == 3 && out.is_contiguous(),
              "out: expected a contiguous CPU (T, N, W) tensor");
  const int64_t steps = out.size(0), batch = out.size(1), width = out.size(2);
  TORCH_CHECK(steps <= UINT32_MAX && batch <= UINT32_MAX && stream >= 0 && stream <= UINT32_MAX,
              "steps, rows and stream must fit 32 bits");
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "g2lstm_philox_uniform", [&] {
    scalar_t* base = out.data_ptr<scalar_t>();
    for_rows(steps * batch, width, [&](int64_t r) {
      thread_local RowScratch<scalar_t> scratch;
      scratch.fit(width);
      row_uniforms<scalar_t>(uint64_t(seed), r % batch, r / batch, stream, width,
                             base + r * width, scratch.words.data());
    });
  });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "g2lstm: fused pointwise G2-LSTM step kernels (CPU)";
  m.def("forward_step", &forward_step, "fused forward step", pybind11::arg("pre"),
        pybind11::arg("hw"), pybind11::arg("c_prev"), pybind11::arg("h_prev"),
        pybind11::arg("c_out"), pybind11::arg("h_out"), pybind11::arg("y_out"),
        pybind11::arg("s_out"), pybind11::arg("mask"), pybind11::arg("kinds"),
        pybind11::arg("scales"), pybind11::arg("keep_gates"),
        pybind11::arg("noise_seed") = pybind11::none(), pybind11::arg("noise_t") = 0,
        pybind11::arg("noise_p") = 0.0, pybind11::arg("noise_mask") = pybind11::none(),
        pybind11::arg("noise_blocks") = std::vector<int64_t>{-1, -1, -1});
  m.def("philox_uniform", &philox_uniform, "Philox4x32-10 uniforms into out (T, N, W)",
        pybind11::arg("seed"), pybind11::arg("stream"), pybind11::arg("out"));
  m.def("backward_step", &backward_step, "fused backward step", pybind11::arg("gates"),
        pybind11::arg("c_t"), pybind11::arg("c_prev"), pybind11::arg("dh"), pybind11::arg("dy"),
        pybind11::arg("dc"), pybind11::arg("dgates"), pybind11::arg("s"), pybind11::arg("mask"),
        pybind11::arg("kinds"), pybind11::arg("scales"));
  m.def("vector_width", [] { return at::vec::Vectorized<float>::size(); });
}
