// Forward + backward time of oneDNN's own fused GRU primitives, for bench/bench_gru.py.
//
// oneDNN's `vanilla_gru` computes exactly the GRU of docs/design (reset gate applied before the
// recurrent matmul; its update gate u is our 1 - z), in one primitive call per sequence with the
// weights packed once; `lbr_gru` is the linear-before-reset variant torch.nn.GRU uses (one
// recurrent matmul per step). Both are timed as a layer is used in training: reorder the plain
// weights into the primitive's packed layout, forward_training, backward, and reorder the weight
// gradients back to the plain layout, for float32 and bfloat16 data (gradients in float32, the
// combination oneDNN implements for bfloat16 training).
//
// Build (bench_gru.py does this when `pip install onednn-devel-cpu-gomp==2023.2.0` and g++ are there):
//   g++ -O2 -std=c++17 bench_onednn_gru.cc -I$PREFIX/include -L$PREFIX/lib -l:libdnnl.so.3
// Run:
//   bench_onednn_gru T B E H REPEATS WARMUP [CHECK_DIR]
// prints one JSON line {"version": ..., "times": {"vanilla_gru": {"float32": s, "bfloat16": s},
// "lbr_gru": {...}}}. With CHECK_DIR, it reads float32 src [T,B,E], h0 [B,H], kernel [E,3H],
// recurrent_kernel [H,3H] and bias [3H] (raw little-endian files written by bench_gru.py, gate
// blocks in nmt.model.gru's order [z, r, h]), runs the float32 vanilla_gru forward on them and writes
// its output sequence to CHECK_DIR/dst.f32, so bench_gru.py can check that the contender computes
// the same function as nmt.model.gru.GRU before it compares their times.

#include "dnnl.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

struct Sizes {
  int T, B, E, H;
};

memory zeros(const memory::desc &md, const engine &eng) {
  memory m(md, eng);
  std::memset(m.get_data_handle(), 0, md.get_size());
  return m;
}

std::vector<float> read_floats(const std::string &path, size_t count) {
  std::vector<float> out(count);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char *>(out.data()), count * sizeof(float));
  if (!f) {
    std::fprintf(stderr, "cannot read %zu floats from %s\n", count, path.c_str());
    std::exit(2);
  }
  return out;
}

// Copies nmt.model.gru's [rows, 3H] weight (gate blocks z, r, h) into oneDNN's ldigo [1,1,rows,3,H]
// (gates u, r, o with u = 1 - z, i.e. the z block negated).
void to_onednn_gates(const std::vector<float> &w, int rows, int H, float *out) {
  for (int i = 0; i < rows; ++i)
    for (int g = 0; g < 3; ++g)
      for (int o = 0; o < H; ++o) out[(i * 3 + g) * H + o] = (g == 0 ? -1.f : 1.f) * w[i * 3 * H + g * H + o];
}

template <class Fwd, class Bwd>
double time_one(const Sizes &s, int bias_gates, dt data, int repeats, int warmup, const char *check_dir) {
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const int T = s.T, B = s.B, E = s.E, H = s.H;
  const auto dir = rnn_direction::unidirectional_left2right;
  memory::desc src_md({T, B, E}, data, tag::tnc), dst_md({T, B, H}, data, tag::tnc);
  memory::desc src_iter_md({1, 1, B, H}, data, tag::ldnc), dst_iter_md({1, 1, B, H}, data, tag::ldnc);
  memory::desc wl_plain({1, 1, E, 3, H}, data, tag::ldigo), wi_plain({1, 1, H, 3, H}, data, tag::ldigo);
  memory::desc wl_any({1, 1, E, 3, H}, data, tag::any), wi_any({1, 1, H, 3, H}, data, tag::any);
  memory::desc bias_md({1, 1, bias_gates, H}, dt::f32, tag::ldgo);
  memory::desc d_src_md({T, B, E}, dt::f32, tag::tnc), d_dst_md({T, B, H}, dt::f32, tag::tnc);
  memory::desc d_iter_md({1, 1, B, H}, dt::f32, tag::ldnc);
  memory::desc d_wl_any({1, 1, E, 3, H}, dt::f32, tag::any), d_wi_any({1, 1, H, 3, H}, dt::f32, tag::any);
  memory::desc d_wl_plain({1, 1, E, 3, H}, dt::f32, tag::ldigo), d_wi_plain({1, 1, H, 3, H}, dt::f32, tag::ldigo);
  memory::desc d_bias_md({1, 1, bias_gates, H}, dt::f32, tag::ldgo);

  auto fwd_pd = typename Fwd::primitive_desc(eng, prop_kind::forward_training, dir, src_md, src_iter_md, wl_any,
                                             wi_any, bias_md, dst_md, dst_iter_md);
  auto bwd_pd = typename Bwd::primitive_desc(eng, prop_kind::backward, dir, src_md, src_iter_md, wl_any, wi_any,
                                             bias_md, dst_md, dst_iter_md, d_src_md, d_iter_md, d_wl_any, d_wi_any,
                                             d_bias_md, d_dst_md, d_iter_md, fwd_pd);
  memory src = zeros(src_md, eng), src_iter = zeros(src_iter_md, eng), bias = zeros(bias_md, eng);
  memory wl_user = zeros(wl_plain, eng), wi_user = zeros(wi_plain, eng);
  memory dst = zeros(dst_md, eng), dst_iter = zeros(dst_iter_md, eng);
  memory wl_f = zeros(fwd_pd.weights_layer_desc(), eng), wi_f = zeros(fwd_pd.weights_iter_desc(), eng);
  memory wl_b = zeros(bwd_pd.weights_layer_desc(), eng), wi_b = zeros(bwd_pd.weights_iter_desc(), eng);
  memory workspace = zeros(fwd_pd.workspace_desc(), eng);
  memory d_src = zeros(d_src_md, eng), d_src_iter = zeros(d_iter_md, eng), d_dst = zeros(d_dst_md, eng);
  memory d_dst_iter = zeros(d_iter_md, eng), d_bias = zeros(d_bias_md, eng);
  memory d_wl = zeros(bwd_pd.diff_weights_layer_desc(), eng), d_wi = zeros(bwd_pd.diff_weights_iter_desc(), eng);
  memory d_wl_user = zeros(d_wl_plain, eng), d_wi_user = zeros(d_wi_plain, eng);

  Fwd forward(fwd_pd);
  Bwd backward(bwd_pd);
  reorder pack_wl_f(wl_user, wl_f), pack_wi_f(wi_user, wi_f), pack_wl_b(wl_user, wl_b), pack_wi_b(wi_user, wi_b);
  reorder unpack_d_wl(d_wl, d_wl_user), unpack_d_wi(d_wi, d_wi_user);

  if (check_dir != nullptr) {  // float32 forward on bench_gru.py's inputs, output to CHECK_DIR/dst.f32
    std::string dir_s(check_dir);
    auto x = read_floats(dir_s + "/src.f32", size_t(T) * B * E);
    auto h0 = read_floats(dir_s + "/h0.f32", size_t(B) * H);
    auto w = read_floats(dir_s + "/kernel.f32", size_t(E) * 3 * H);
    auto u = read_floats(dir_s + "/recurrent_kernel.f32", size_t(H) * 3 * H);
    auto b = read_floats(dir_s + "/bias.f32", size_t(3) * H);
    std::memcpy(src.get_data_handle(), x.data(), x.size() * sizeof(float));
    std::memcpy(src_iter.get_data_handle(), h0.data(), h0.size() * sizeof(float));
    to_onednn_gates(w, E, H, static_cast<float *>(wl_user.get_data_handle()));
    to_onednn_gates(u, H, H, static_cast<float *>(wi_user.get_data_handle()));
    to_onednn_gates(b, 1, H, static_cast<float *>(bias.get_data_handle()));
  }

  auto run = [&] {
    pack_wl_f.execute(strm, wl_user, wl_f);
    pack_wi_f.execute(strm, wi_user, wi_f);
    forward.execute(strm, {{DNNL_ARG_SRC_LAYER, src}, {DNNL_ARG_SRC_ITER, src_iter}, {DNNL_ARG_WEIGHTS_LAYER, wl_f},
                           {DNNL_ARG_WEIGHTS_ITER, wi_f}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST_LAYER, dst},
                           {DNNL_ARG_DST_ITER, dst_iter}, {DNNL_ARG_WORKSPACE, workspace}});
    if (check_dir != nullptr) return;
    pack_wl_b.execute(strm, wl_user, wl_b);
    pack_wi_b.execute(strm, wi_user, wi_b);
    // oneDNN accumulates into the weight gradients: clear them as a fresh step would.
    std::memset(d_wl.get_data_handle(), 0, d_wl.get_desc().get_size());
    std::memset(d_wi.get_data_handle(), 0, d_wi.get_desc().get_size());
    std::memset(d_bias.get_data_handle(), 0, d_bias.get_desc().get_size());
    backward.execute(strm, {{DNNL_ARG_SRC_LAYER, src}, {DNNL_ARG_SRC_ITER, src_iter}, {DNNL_ARG_WEIGHTS_LAYER, wl_b},
                            {DNNL_ARG_WEIGHTS_ITER, wi_b}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST_LAYER, dst},
                            {DNNL_ARG_DST_ITER, dst_iter}, {DNNL_ARG_WORKSPACE, workspace},
                            {DNNL_ARG_DIFF_SRC_LAYER, d_src}, {DNNL_ARG_DIFF_SRC_ITER, d_src_iter},
                            {DNNL_ARG_DIFF_WEIGHTS_LAYER, d_wl}, {DNNL_ARG_DIFF_WEIGHTS_ITER, d_wi},
                            {DNNL_ARG_DIFF_BIAS, d_bias}, {DNNL_ARG_DIFF_DST_LAYER, d_dst},
                            {DNNL_ARG_DIFF_DST_ITER, d_dst_iter}});
    unpack_d_wl.execute(strm, d_wl, d_wl_user);
    unpack_d_wi.execute(strm, d_wi, d_wi_user);
    strm.wait();
  };

  if (check_dir != nullptr) {
    run();
    strm.wait();
    std::ofstream out(std::string(check_dir) + "/dst.f32", std::ios::binary);
    out.write(static_cast<const char *>(dst.get_data_handle()), dst_md.get_size());
    return 0.0;
  }
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 7 && argc != 8) {
    std::fprintf(stderr, "usage: %s T B E H REPEATS WARMUP [CHECK_DIR]\n", argv[0]);
    return 2;
  }
  Sizes s{std::atoi(argv[1]), std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4])};
  int repeats = std::atoi(argv[5]), warmup = std::atoi(argv[6]);
  try {
    if (argc == 8) {
      time_one<gru_forward, gru_backward>(s, 3, dt::f32, 1, 0, argv[7]);
      return 0;
    }
    const dnnl_version_t *v = dnnl_version();
    std::printf("{\"version\": \"%d.%d.%d\", \"times\": {", v->major, v->minor, v->patch);
    const char *sep = "";
    for (int lbr = 0; lbr < 2; ++lbr) {
      std::printf("%s\"%s\": {", sep, lbr ? "lbr_gru" : "vanilla_gru");
      sep = ", ";
      const char *inner = "";
      for (dt data : {dt::f32, dt::bf16}) {
        double seconds = lbr ? time_one<lbr_gru_forward, lbr_gru_backward>(s, 4, data, repeats, warmup, nullptr)
                             : time_one<gru_forward, gru_backward>(s, 3, data, repeats, warmup, nullptr);
        std::printf("%s\"%s\": %.6f", inner, data == dt::f32 ? "float32" : "bfloat16", seconds);
        inner = ", ";
      }
      std::printf("}");
    }
    std::printf("}}\n");
  } catch (const dnnl::error &e) {
    std::fprintf(stderr, "oneDNN: %s\n", e.what());
    return 1;
  }
  return 0;
}
