#include "tensor/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace gen {

namespace {
constexpr size_t kBlockFloats = size_t{1} << 22;  // 16 MiB blocks
void free_floats(float* p) { std::free(p); }
size_t round_up(size_t n) { return (n + 15) / 16 * 16; }  // 16 floats = 64 bytes
}  // namespace

float* Arena::allocate(int64_t count, bool zeroed) {
  size_t n = round_up(static_cast<size_t>(count));
  while (current_ < blocks_.size() && blocks_[current_].capacity - blocks_[current_].used < n) ++current_;
  if (current_ == blocks_.size()) {
    Block block;
    block.capacity = std::max(kBlockFloats, n);
    void* memory = std::aligned_alloc(64, block.capacity * sizeof(float));
    if (!memory) throw std::bad_alloc();
    block.data = std::unique_ptr<float[], void (*)(float*)>(static_cast<float*>(memory), free_floats);
    blocks_.push_back(std::move(block));
  }
  Block& block = blocks_[current_];
  float* p = block.data.get() + block.used;
  block.used += n;
  if (zeroed) std::memset(p, 0, n * sizeof(float));
  return p;
}

void Arena::reset() {
  for (auto& block : blocks_) block.used = 0;
  current_ = 0;
}

size_t Arena::used_bytes() const {
  size_t total = 0;
  for (const auto& block : blocks_) total += block.used * sizeof(float);
  return total;
}

size_t Arena::capacity_bytes() const {
  size_t total = 0;
  for (const auto& block : blocks_) total += block.capacity * sizeof(float);
  return total;
}

size_t Parameters::add(std::string name, std::vector<int64_t> shape, bool decay) {
  View view;
  view.name = std::move(name);
  view.shape = std::move(shape);
  view.size = 1;
  for (int64_t d : view.shape) view.size *= static_cast<size_t>(d);
  view.offset = total_;
  view.decay = decay;
  total_ += view.size;
  views_.push_back(std::move(view));
  return views_.size() - 1;
}

void ZeroedFloats::Free::operator()(float* p) const { std::free(p); }

void ZeroedFloats::assign_zeros(size_t count) {
  data_.reset();
  size_ = 0;
  if (count == 0) return;
  data_.reset(static_cast<float*>(std::calloc(count, sizeof(float))));
  if (!data_) throw std::bad_alloc();
  size_ = count;
}

void Parameters::allocate() {
  values_.assign_zeros(total_);
  grads_.assign_zeros(total_);
}

Tensor Parameters::tensor(size_t index) {
  const View& view = views_[index];
  return Tensor{values_.data() + view.offset, grads_.data() + view.offset, view.shape};
}

const Parameters::View* Parameters::find(const std::string& name) const {
  for (const auto& view : views_)
    if (view.name == name) return &view;
  return nullptr;
}

void Parameters::zero_grads() {
  for (ZeroedFloats* g : {&grads_, &shard_grads_})
    if (!g->empty()) std::memset(g->data(), 0, g->size() * sizeof(float));
}

void Parameters::set_shards(int count) {
  if (count < 1) throw std::logic_error("Parameters::set_shards: at least one shard");
  shard_grads_.assign_zeros(static_cast<size_t>(count - 1) * total_);
}

Tensor Parameters::in_shard(const Tensor& t, int shard) {
  if (shard == 0 || !t.grad) return t;
  if (shard < 0 || shard >= shards() || t.grad < grads_.data() || t.grad >= grads_.data() + total_)
    throw std::logic_error("Parameters::in_shard: no such shard, or not this buffer's tensor");
  Tensor r = t;
  r.grad = shard_grads_.data() + static_cast<size_t>(shard - 1) * total_ + (t.grad - grads_.data());
  return r;
}

void Parameters::reduce_shards() {
  const int count = shards();
  if (count == 1) return;
  const float scale = 1.0f / static_cast<float>(count);
  constexpr size_t kChunk = size_t{1} << 14;
  const size_t chunks = (total_ + kChunk - 1) / kChunk;
  float* g = grads_.data();
  const float* others = shard_grads_.data();
  const size_t total = total_;
#pragma omp parallel for schedule(static) if (total >= (size_t{1} << 17))
  for (size_t chunk = 0; chunk < chunks; ++chunk) {
    const size_t end = std::min(total, (chunk + 1) * kChunk);
    for (int s = 1; s < count; ++s) {
      const float* o = others + static_cast<size_t>(s - 1) * total;
#pragma omp simd
      for (size_t i = chunk * kChunk; i < end; ++i) g[i] += o[i];
    }
#pragma omp simd
    for (size_t i = chunk * kChunk; i < end; ++i) g[i] *= scale;
  }
}

}  // namespace gen
