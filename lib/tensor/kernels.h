// The layers of every model, as pairs of kernels over flat buffers (after llm.c).
//
// Each forward writes its outputs; each backward *accumulates* (+=) into the gradients of its
// inputs, so a tensor used twice gets the sum, unless told to overwrite them (`overwrite`): the
// tape does that for a gradient's first writer, so that the buffer need not be zeroed first. Dimensions are explicit and 64-bit; the shape of
// every buffer is in the comment above its kernel. Kernels are templates over float (training)
// and double (the finite-difference gradient checks in tests/unit/test_kernels.cpp). A null
// gradient pointer means "not needed".
//
//   nn::linear_forward(out, inp, w, b, N, C, OC);             // out[N,OC] = inp[N,C] w[OC,C]^T + b
//   nn::linear_backward(dinp, dw, db, dout, inp, w, N, C, OC);
#pragma once

#include <cstdint>
#include <utility>

namespace gen::nn {

// C[M,N] = alpha op(A) op(B) + beta C, row-major, op(A) [M,K], op(B) [K,N] (OpenBLAS), with
// leading dimensions (row strides) lda, ldb, ldc.
template <typename T>
void gemm_strided(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
// The same on contiguous matrices.
template <typename T>
void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B,
          T beta, T* C);

// out[N,OC] = inp[N,C] w[OC,C]^T + b[OC] (+ residual[N,OC]); b and residual may be null, and
// residual may be out itself (a residual stream updated in place).
template <typename T>
void linear_forward(T* out, const T* inp, const T* w, const T* b, int64_t N, int64_t C, int64_t OC,
                    const T* residual = nullptr);
// The same in float for a few rows (generation with a KV cache: one token, or a prompt), from w
// packed by pack_rows: blocks of four vectors of outputs, each block [C][its outputs] (zeros
// past OC), so that a row's outputs come from one pass down contiguous memory and no sum is folded across
// vector lanes. Every output is a chain of multiply-adds down C in order: the same bits for any
// N and any vector width where multiply-adds are fused (FMA builds; the x86-64 baseline rounds
// each product). Four rows (two where vectors are narrower than 16 floats) share each pass.
// The work comes in shares for a caller that runs its own threads (Gpt::step): share `part` of
// `parts` computes the outputs [first, second) (whole blocks; the same bits whatever the
// shares), bias and residual included, and leaves the other outputs alone; part 0 of 1 is all.
int64_t packed_rows_size(int64_t OC, int64_t C);  // floats (the layout depends on the vector width)
void pack_rows(float* packed, const float* w, int64_t OC, int64_t C);
std::pair<int64_t, int64_t> linear_rows_share(float* out, const float* inp, const float* packed, const float* b,
                                              int64_t N, int64_t C, int64_t OC, const float* residual, int part,
                                              int parts);
// dinp[N,C] += dout[N,OC] w; dw[OC,C] += dout^T inp; db[OC] += sum over N of dout.
template <typename T>
void linear_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int64_t C,
                     int64_t OC, bool overwrite = false);

// out[B,T,C] = wte[ids[b,t]] + wpe[t]; ids[B,T] < V (checked by the caller), wte[V,C], wpe[>=T,C].
template <typename T>
void embedding_forward(T* out, const uint32_t* ids, const T* wte, const T* wpe, int64_t B, int64_t Tn, int64_t C);
template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const uint32_t* ids, int64_t B, int64_t Tn, int64_t C);

// out[N,C] = (inp - mean) * rstd * w + b per row, rstd = 1/sqrt(var + 1e-5); saves mean[N], rstd[N].
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int64_t C);
template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int64_t C, bool overwrite = false);

// GELU, tanh approximation (Hendrycks and Gimpel 2016, section 2; as GPT-2):
// out = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise over n values.
template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n);
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, bool overwrite = false);

// Inverted dropout: out[i] = x[i] / (1 - p) where kept, 0 where dropped. Element i is dropped
// when a hash of (key, i) falls below p: no mask is stored, the backward pass (dx = dout / (1 -
// p) where kept, 0 elsewhere) draws the same one from the key, and the mask depends on the key
// and the element alone (not on threads).
bool dropout_keeps(uint64_t key, int64_t i, float p);
template <typename T>
void dropout_forward(T* out, const T* x, int64_t n, float p, uint64_t key);
template <typename T>
void dropout_backward(T* dx, const T* dout, int64_t n, float p, uint64_t key, bool overwrite = false);

// out[n] = a[n] + b[n]; backward: da += dout, db += dout (da first: da may be db).
template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t n);
template <typename T>
void residual_backward(T* da, T* db, const T* dout, int64_t n, bool overwrite_a = false, bool overwrite_b = false);

// Multi-head self-attention, causal (a language model's) or over every position (an image's
// pixels). qkv[B,T,3C] holds q, k, v (each C = NH heads of HS = C/NH); out[B,T,C];
// att[B,NH,T,T] keeps the softmax probabilities (causal: zero above the diagonal).
// att = softmax(q k^T / sqrt(HS)) over positions <= t (causal) or all; out = att v ("Attention Is
// All You Need", eq. 1). With dropout > 0 (training), out = dropout(att) v, the mask of each
// (batch, head) drawn from key as dropout_forward draws it; att still keeps the softmax's.
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int64_t B, int64_t Tn, int64_t C, int64_t NH,
                       bool causal = true, float dropout = 0, uint64_t key = 0);
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int64_t B, int64_t Tn, int64_t C,
                        int64_t NH, bool overwrite = false, bool causal = true, float dropout = 0, uint64_t key = 0);

// Fused softmax and cross-entropy over logits[N,V] with targets[N] < V:
// loss[n] = -log softmax(logits[n])[targets[n]]; probs[N,V] saved for backward.
template <typename T>
void softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const uint32_t* targets, int64_t N,
                                   int64_t V);
// dlogits[n,v] += (probs[n,v] - [v == targets[n]]) * dloss[n].
template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const uint32_t* targets, const T* dloss, int64_t N,
                                    int64_t V, bool overwrite = false);

}  // namespace gen::nn
