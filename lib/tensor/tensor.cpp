#include "tensor/tensor.h"

#include <fmt/format.h>

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

#include "core/cluster.h"
#include "core/error.h"

namespace gen {

namespace {
constexpr size_t kBlockFloats = size_t{1} << 22;  // 16 MiB blocks
size_t round_up(size_t n) { return (n + 15) / 16 * 16; }  // 16 floats = 64 bytes
constexpr size_t kHugePage = size_t{2} << 20;
// AddressSanitizer checks heap blocks only: under it every block comes from the heap.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMapLargeBlocks = false;
#else
constexpr bool kMapLargeBlocks = true;
#endif
}  // namespace

void ZeroedFloats::assign_zeros(size_t count) {
  release();
  if (count == 0) return;
  if (count > (SIZE_MAX - 2 * kHugePage) / sizeof(float)) throw std::bad_alloc();
  const size_t bytes = count * sizeof(float);
  if (kMapLargeBlocks && bytes >= kHugePage) {
    // Map a huge page more than needed, then unmap what lies outside the 2 MiB-aligned span.
    const size_t span = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = mmap(nullptr, span + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    char* base = static_cast<char*>(p);
    char* aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHugePage - 1) / kHugePage * kHugePage);
    if (aligned > base) munmap(base, static_cast<size_t>(aligned - base));
    if (char* tail = aligned + span; tail < base + span + kHugePage)
      munmap(tail, static_cast<size_t>(base + span + kHugePage - tail));
    madvise(aligned, span, MADV_HUGEPAGE);  // a hint: without transparent huge pages, 4 KiB pages
    data_ = reinterpret_cast<float*>(aligned);
    mapped_ = span;
  } else {
    void* p = std::aligned_alloc(64, round_up(count) * sizeof(float));
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    data_ = static_cast<float*>(p);
  }
  size_ = count;
}

void ZeroedFloats::release() {
  if (mapped_ != 0) munmap(data_, mapped_);
  else std::free(data_);
  data_ = nullptr;
  size_ = mapped_ = 0;
}

ZeroedFloats::ZeroedFloats(ZeroedFloats&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

ZeroedFloats& ZeroedFloats::operator=(ZeroedFloats&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

float* Arena::allocate(int64_t count, bool zeroed) {
  size_t n = round_up(static_cast<size_t>(count));
  while (current_ < blocks_.size() && blocks_[current_].data.size() - blocks_[current_].used < n) ++current_;
  if (current_ == blocks_.size()) {
    Block block;
    block.data.assign_zeros(std::max(kBlockFloats, n));
    blocks_.push_back(std::move(block));
  }
  Block& block = blocks_[current_];
  float* p = block.data.data() + block.used;
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
  for (const auto& block : blocks_) total += block.data.size() * sizeof(float);
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

namespace {
thread_local ParameterLimit* g_parameter_limit = nullptr;
}  // namespace

ParameterLimit::ParameterLimit(uint64_t floats, std::string file)
    : floats_(floats), file_(std::move(file)), outer_(g_parameter_limit) {
  g_parameter_limit = this;
}

ParameterLimit::~ParameterLimit() { g_parameter_limit = outer_; }

void ParameterLimit::check(uint64_t floats) {
  const ParameterLimit* limit = g_parameter_limit;
  if (limit && floats > limit->floats_)
    throw Error(limit->file_, fmt::format("its config describes a model of {} parameters, more than the file's "
                                          "{} bytes of tensors hold",
                                          floats, 4 * limit->floats_));
}

void Parameters::allocate(ZeroedFloats values) {
  ParameterLimit::check(total_);
  if (values.empty()) {
    values_.assign_zeros(total_);
  } else {
    if (values.size() != total_)
      throw std::logic_error(fmt::format("Parameters::allocate: {} values for {} parameters", values.size(), total_));
    values_ = std::move(values);
  }
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

void Parameters::zero_shard_grads(int shard) {
  const int local = shard - first_;
  if (local < 0 || local >= local_) throw std::logic_error("Parameters::zero_shard_grads: not a local shard");
  float* g = local == 0 ? grads_.data() : shard_grads_.data() + static_cast<size_t>(local - 1) * total_;
  if (total_ > 0) std::memset(g, 0, total_ * sizeof(float));
}

void Parameters::set_shards(int count, const Cluster* cluster) {
  const int ranks = cluster ? cluster->size() : 1, rank = cluster ? cluster->rank() : 0;
  if (count < 1 || (count & (count - 1)) != 0)
    throw std::logic_error("Parameters::set_shards: the shards must be a power of two");
  if ((ranks & (ranks - 1)) != 0 || count % ranks != 0) {
    std::string choices = "1";
    for (int n = 2; n <= count; n *= 2) choices += (n == count ? " or " : ", ") + std::to_string(n);
    throw UsageError(fmt::format("mpirun -np {}: the batch is {} shard{}, which go to {} rank{}", ranks, count,
                                 count == 1 ? "" : "s", choices, count == 1 ? "" : "s"));
  }
  count_ = count;
  local_ = count / ranks;
  first_ = rank * local_;
  shard_grads_.assign_zeros(static_cast<size_t>(local_ - 1) * total_);
}

Tensor Parameters::in_shard(const Tensor& t, int shard) {
  const int local = shard - first_;
  if (local == 0 || !t.grad) return t;
  if (local < 0 || local >= local_ || t.grad < grads_.data() || t.grad >= grads_.data() + total_)
    throw std::logic_error("Parameters::in_shard: not one of this process's shards, or not this buffer's tensor");
  Tensor r = t;
  r.grad = shard_grads_.data() + static_cast<size_t>(local - 1) * total_ + (t.grad - grads_.data());
  return r;
}

void Parameters::reduce_shards(Cluster* cluster) {
  // Local shard k's gradient: k == 0 is grads_, else shard_grads_'s (k - 1)th copy.
  auto shard = [&](int k) { return k == 0 ? grads_.data() : shard_grads_.data() + static_cast<size_t>(k - 1) * total_; };
  constexpr size_t kChunk = size_t{1} << 14;
  const size_t total = total_, chunks = (total + kChunk - 1) / kChunk;
  const int local = local_;
  const bool across = cluster && cluster->size() > 1;
  const float scale = 1.0f / static_cast<float>(count_);
  if (local > 1 || (!across && count_ > 1)) {
    // Chunk by chunk (in cache): the tree, then (in one process) the division.
#pragma omp parallel for schedule(static) if (total >= (size_t{1} << 17))
    for (size_t chunk = 0; chunk < chunks; ++chunk) {
      const size_t begin = chunk * kChunk, end = std::min(total, begin + kChunk);
      for (int half = 1; half < local; half *= 2)
        for (int k = 0; k + half < local; k += 2 * half) {
          float* a = shard(k);
          const float* b = shard(k + half);
#pragma omp simd
          for (size_t i = begin; i < end; ++i) a[i] += b[i];
        }
      if (across) continue;
      float* g = grads_.data();
#pragma omp simd
      for (size_t i = begin; i < end; ++i) g[i] *= scale;
    }
  }
  if (!across || count_ == 1) return;
  cluster->tree_sum(grads_.data(), total);
  float* g = grads_.data();
#pragma omp parallel for simd schedule(static) if (parallel : total >= (size_t{1} << 17))
  for (size_t i = 0; i < total; ++i) g[i] *= scale;
}

}  // namespace gen
