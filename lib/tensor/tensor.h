// Tensors, parameters and the activation arena: the storage side of the numerical core.
//
// A Tensor is a view: a pointer to float32 values, a pointer to their gradient (or null), and a
// shape. It owns nothing. Parameters of a model live in one contiguous buffer (and their
// gradients in a second one, and the optimizer's moments in two more), with a named view per
// weight: zeroing gradients is one memset, AdamW is one loop, a checkpoint is the list of views.
// Activations come from an Arena that is reset every step instead of from malloc.
//
//   gen::Parameters params;
//   auto w = params.add("h.0.mlp.c_fc.weight", {512, 128}, /*decay=*/true);
//   params.allocate();                        // now params.tensor(w) points into the buffer
//   gen::Arena arena;  float* x = arena.allocate(1024);  arena.reset();
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gen {

struct GradSlot;  // graph.h
class Cluster;   // core/cluster.h

struct Tensor {
  float* data = nullptr;
  float* grad = nullptr;  // null: no gradient flows here (unless node says otherwise)
  std::vector<int64_t> shape;
  // A layer's output on a training Graph: its gradient lives only during backward(), in a buffer
  // the graph lends when the first consumer's backward step writes it and takes back once the
  // layer that made it has sent it on (grad stays null).
  GradSlot* node = nullptr;

  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i < 0 ? static_cast<int>(shape.size()) + i : i)]; }
  bool defined() const { return data != nullptr; }
};

// The same values and gradient under another shape of as many values.
inline Tensor reshaped(const Tensor& t, std::vector<int64_t> shape) {
  Tensor r{t.data, t.grad, std::move(shape), t.node};
  if (r.size() != t.size()) throw std::logic_error("reshaped: the new shape holds a different number of values");
  return r;
}

// Zeroed floats, 64-byte aligned. A large block (2 MiB or more) comes straight from the kernel
// as fresh zero pages, which cost nothing until written (a model built only for its layout, or
// gradients a sampler never computes), aligned to 2 MiB and marked for transparent huge pages
// (MADV_HUGEPAGE): a 3 MB model then takes 2 page faults where it took 800. Page faults are dear
// on the virtual machines here: gsample's start-up took 36.5 ms of CPU with 4 KiB pages (and a
// copy of the weights), 12.7 with these.
class ZeroedFloats {
 public:
  ZeroedFloats() = default;
  explicit ZeroedFloats(size_t count) { assign_zeros(count); }
  ZeroedFloats(ZeroedFloats&& other) noexcept;
  ZeroedFloats& operator=(ZeroedFloats&& other) noexcept;
  ZeroedFloats(const ZeroedFloats&) = delete;
  ZeroedFloats& operator=(const ZeroedFloats&) = delete;
  ~ZeroedFloats() { release(); }

  void assign_zeros(size_t count);
  float* data() { return data_; }
  const float* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  float* begin() { return data_; }
  float* end() { return data_ + size_; }
  const float* begin() const { return data_; }
  const float* end() const { return data_ + size_; }

 private:
  void release();
  float* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes mapped (a large block); 0: from the heap
};

// Aligned float storage that is handed out in order and taken back all at once.
class Arena {
 public:
  // Floats, 64-byte aligned, valid until reset(); zeroed if asked.
  float* allocate(int64_t count, bool zeroed = false);
  void reset();
  size_t used_bytes() const;
  size_t capacity_bytes() const;

 private:
  struct Block {
    ZeroedFloats data;
    size_t used = 0;  // floats
  };
  std::vector<Block> blocks_;
  size_t current_ = 0;
};

// While one lives (on this thread), no model may have more than `floats` parameters: a
// checkpoint's loader builds the model its config describes only after capping it at what the
// file can hold, so that a config read from a small file never allocates gigabytes first.
class ParameterLimit {
 public:
  ParameterLimit(uint64_t floats, std::string file);
  ~ParameterLimit();
  ParameterLimit(const ParameterLimit&) = delete;
  ParameterLimit& operator=(const ParameterLimit&) = delete;
  // Throws Error if a limit is in force and `floats` exceeds it.
  static void check(uint64_t floats);

 private:
  uint64_t floats_;
  std::string file_;
  ParameterLimit* outer_;
};

class Parameters {
 public:
  struct View {
    std::string name;
    std::vector<int64_t> shape;
    size_t offset = 0;  // floats from the start of the buffer
    size_t size = 0;
    bool decay = true;  // AdamW weight decay applies (matrices and embeddings, not biases or norms)
  };

  // Declares a weight; returns its index. All weights are declared before allocate().
  size_t add(std::string name, std::vector<int64_t> shape, bool decay);
  // Allocates values and gradients, all zero, or takes `values` (size() floats, in the views'
  // order: a checkpoint's weights) as they are. Refuses (Error naming the file) a model larger
  // than a ParameterLimit in force allows.
  void allocate(ZeroedFloats values = {});
  bool allocated() const { return !values_.empty() || views_.empty(); }

  Tensor tensor(size_t index);
  const std::vector<View>& views() const { return views_; }
  const View* find(const std::string& name) const;
  size_t size() const { return total_; }
  float* values() { return values_.data(); }
  const float* values() const { return values_.data(); }
  float* grads() { return grads_.data(); }
  const float* grads() const { return grads_.data(); }
  // Zeroes the gradients (of every shard).
  void zero_grads();
  // Zeroes one local shard's copy of the gradients (shard: its number in the batch): run_shards
  // has each shard's thread clear its own copy, in parallel and into its cache.
  void zero_shard_grads(int shard);

  // Data parallelism: a batch in `count` equal shards (a power of two, or 1), of which this
  // process computes shards first_shard() .. first_shard() + local_shards() - 1: all of them, or
  // its rank's share of a cluster (core/cluster.h; its size a power of two dividing count). Each
  // shard's backward pass adds into its own copy of the gradients (the first local shard's is
  // grads()), so that shards can run on different threads; reduce_shards() then gives grads()
  // the gradient of the whole batch: the shards' gradients added in a fixed binary tree over
  // the shard numbers (pairs (2i, 2i+1), then pairs of pairs, ...: within this process, then
  // across the ranks), over count. The same bits for any number of threads and ranks.
  void set_shards(int count, const Cluster* cluster = nullptr);
  int shards() const { return count_; }
  int first_shard() const { return first_; }
  int local_shards() const { return local_; }
  // t (one of this buffer's tensors) with its gradient in shard's copy (shard: its number in the
  // batch, one of this process's).
  Tensor in_shard(const Tensor& t, int shard);
  // grads() = the tree sum of the shards' gradients / count (a batch whose loss is the mean of
  // the equal shards' mean losses), every rank of the cluster given to set_shards taking part.
  void reduce_shards(Cluster* cluster = nullptr);

 private:
  std::vector<View> views_;
  size_t total_ = 0;
  ZeroedFloats values_;
  ZeroedFloats grads_;
  ZeroedFloats shard_grads_;  // local shards 1.. (the first is grads_), total_ floats each
  int count_ = 1, first_ = 0, local_ = 1;
};

}  // namespace gen
